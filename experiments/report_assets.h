// The charting library that the HTML report inlines (report_html.cpp): the
// browser bundles of Vega and Vega-Lite, at the versions that
// experiments/report_js/package-lock.json pins, embedded into the binary at
// build time (experiments/CMakeLists.txt writes report_assets.cpp with
// cmake/embed_files.cmake), so that a report needs no file beside mtfsim and
// no network.
#pragma once

#include <string_view>

namespace mtf::experiments::assets {

/// vega.min.js: parses a Vega spec and renders it (here as SVG) in a browser.
std::string_view vega_js();
/// vega-lite.min.js: compiles a Vega-Lite spec to a Vega spec.
std::string_view vega_lite_js();
std::string_view vega_version();
std::string_view vega_lite_version();

}  // namespace mtf::experiments::assets
