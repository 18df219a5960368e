// Everything a C++ backend plugin needs: header only, no LibTorch, no Boost.
// A plugin in C includes only qsdk/abi.h.
#pragma once

#include "qsdk/abi.h"
#include "qsdk/backend.h"
#include "qsdk/condition.h"
#include "qsdk/engine.h"
#include "qsdk/plugin.h"
#include "qsdk/rule.h"
#include "qsdk/spec.h"
#include "qsdk/version.h"
