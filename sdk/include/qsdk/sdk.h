// Everything a backend plugin needs. No LibTorch.
#pragma once

#include "qsdk/abi.h"
#include "qsdk/backend.h"
#include "qsdk/plugin.h"
#include "qsdk/rule.h"
#include "qsdk/spec.h"
#include "qsdk/version.h"
