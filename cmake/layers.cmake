# The floor plan: which project folders each folder may include from. The one
# place the allowed dependencies are written down (docs/architecture.md draws
# them). Read by CMakeLists.txt (folder order) and by check_layers.cmake, which a
# ctest runs: a file that includes from a folder not listed for its own folder,
# or a folder whose CMakeLists.txt links project libraries other than the ones
# its files include, fails the suite.
#
# Bottom up. tests/<folder>/ may include what <folder> may, and <folder> itself.
set(MTF_FLOORS core users metrics results agents sim experiments apps python)
set(MTF_MAY_INCLUDE_core "")
set(MTF_MAY_INCLUDE_users core)
set(MTF_MAY_INCLUDE_metrics core)
set(MTF_MAY_INCLUDE_results core)
set(MTF_MAY_INCLUDE_agents core)
set(MTF_MAY_INCLUDE_sim core users metrics results)
set(MTF_MAY_INCLUDE_experiments core users metrics results agents sim)
set(MTF_MAY_INCLUDE_apps core users metrics results agents sim experiments)
# python/ (the Python module) stands where apps/ does: a front end over every floor.
set(MTF_MAY_INCLUDE_python core users metrics results agents sim experiments)
