// A file that breaks the floor plan on purpose (tests/CMakeLists.txt: layer_check_catches_upward_includes).
#pragma once
#include "core/rng.h"
#include "sim/simulator.h"
