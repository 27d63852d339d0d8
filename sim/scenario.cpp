// placeholder, being written
#include "sim/scenario.h"
