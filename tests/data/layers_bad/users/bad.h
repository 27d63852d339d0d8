// A file that breaks the floor plan on purpose (tests/CMakeLists.txt: layer_check_catches_violations).
#pragma once
#include "core/rng.h"
#include "sim/simulator.h"
