// The HTML report of an experiment's run database (see report.h): one
// self-contained page whose charts are Vega-Lite specs built here from table
// metrics and drawn as SVG in the browser by the Vega and Vega-Lite bundles
// that the page inlines (report_assets.h). docs/experiments.md, "The HTML
// report", says what each chart shows and where its data comes from.
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "experiments/metric_keys.h"
#include "experiments/report.h"
#include "experiments/report_assets.h"
#include "experiments/report_rows.h"

namespace mtf::experiments {
namespace {

using nlohmann::json;

/// One chart of the page: its spec, or (spec null) the sentence that says why
/// the run has nothing to draw.
struct Chart {
  std::string id;
  std::string title;
  std::string caption;
  json spec;
  std::string absent;
};

std::string escape_html(const std::string& s) {
  std::string out;
  for (char c : s) switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  return out;
}

std::string fixed(double x, int digits) {
  if (!std::isfinite(x)) return "n/a";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, x);
  return b;
}

/// The label of an A/B metric (ab_metrics()), or its name.
std::string metric_label(const std::string& name) {
  for (const AbMetric& m : ab_metrics())
    if (name == m.name) return m.label;
  return name;
}

/// The A/B metrics in chart order: the primary metric first, then report order.
std::vector<std::string> metric_order(const std::string& primary) {
  std::vector<std::string> out;
  if (!primary.empty()) out.push_back(primary);
  for (const AbMetric& m : ab_metrics())
    if (m.name != primary) out.emplace_back(m.name);
  return out;
}

/// The control arm of the A/B test: the arm with levels but no lifts.
std::string control_arm(const MetricIndex& ix) {
  for (const std::string& arm : ix.subjects(keys::kAbLevel))
    if (!std::any_of(ix.rows.begin(), ix.rows.end(), [&](const MetricRow* r) {
          return r->section == keys::kAb && r->subject == arm;
        }))
      return arm;
  return {};
}

const json kPoint = {{"type", "point"}, {"filled", true}, {"size", 40}};

/// A forest plot: one panel per metric (rows carry "metric", "order",
/// "subject", "lift", "lo", "hi" in percent, and optionally "mean"), a point
/// per subject at its lift and a rule over its interval, and a line at 0.
json forest_spec(json values, const std::string& subject_title, const std::string& x_title) {
  const json x = {{"field", "lift"}, {"type", "quantitative"}, {"title", x_title}};
  const json y = {{"field", "subject"}, {"type", "nominal"}, {"title", subject_title}, {"sort", nullptr}};
  const json tooltip = json::array({{{"field", "subject"}, {"title", subject_title}},
                                    {{"field", "lift"}, {"format", ".2f"}, {"title", "lift (%)"}},
                                    {{"field", "lo"}, {"format", ".2f"}, {"title", "95% low (%)"}},
                                    {{"field", "hi"}, {"format", ".2f"}, {"title", "95% high (%)"}}});
  json layers = json::array();
  layers.push_back({{"mark", {{"type", "rule"}, {"color", "#999"}, {"strokeDash", {3, 3}}}},
                    {"encoding", {{"x", {{"datum", 0}, {"type", "quantitative"}}}}}});
  layers.push_back({{"mark", {{"type", "rule"}, {"strokeWidth", 2}}},
                    {"encoding", {{"x", {{"field", "lo"}, {"type", "quantitative"}, {"title", x_title}}},
                                  {"x2", {{"field", "hi"}}},
                                  {"y", y}}}});
  layers.push_back({{"mark", kPoint}, {"encoding", {{"x", x}, {"y", y}, {"tooltip", tooltip}}}});
  const bool means = std::any_of(values.begin(), values.end(), [](const json& v) { return v.contains("mean"); });
  if (means)
    layers.push_back({{"mark", {{"type", "tick"}, {"color", "#d62728"}, {"thickness", 2}}},
                      {"encoding",
                       {{"x", {{"field", "mean"}, {"type", "quantitative"}}},
                        {"y", y},
                        {"tooltip", json::array({{{"field", "subject"}},
                                                 {{"field", "mean"}, {"format", ".2f"}, {"title", "mean lift (%)"}}})}}}});
  return {{"data", {{"values", std::move(values)}}},
          {"facet",
           {{"row",
             {{"field", "metric"},
              {"type", "nominal"},
              {"title", nullptr},
              {"sort", {{"field", "order"}, {"op", "min"}}},
              {"header", {{"labelAngle", 0}, {"labelAlign", "left"}, {"labelFontWeight", "bold"}}}}}}},
          {"spec", {{"width", 520}, {"layer", std::move(layers)}}},
          {"resolve", {{"scale", {{"x", "independent"}}}}}};
}

/// A forest row from a lift row (section ab or exploration); null without a
/// finite lift.
json forest_row(const MetricRow& r, int order) {
  if (!std::isfinite(r.value)) return nullptr;
  json v = {{"metric", metric_label(r.metric)}, {"order", order}, {"subject", r.subject}, {"lift", 100 * r.value}};
  v["lo"] = r.ci_low && std::isfinite(*r.ci_low) ? json(100 * *r.ci_low) : json(100 * r.value);
  v["hi"] = r.ci_high && std::isfinite(*r.ci_high) ? json(100 * *r.ci_high) : json(100 * r.value);
  return v;
}

Chart learning_curves(const MetricIndex& ix) {
  Chart c{"learning-curves", "Learning curves",
          "Each agent's training, at every recorded step: its losses, and its policy on a fixed probe of its "
          "dataset (mean Q of its own action, the share of its actions outside the logged exploration bounds, "
          "the mean distance to the logged baseline action). Section curve of table metrics.",
          nullptr, ""};
  json values = json::array();
  std::vector<std::string> metrics;
  for (const MetricRow* r : ix.rows) {
    if (r->section != keys::kCurve || !r->rep || !std::isfinite(r->value)) continue;
    values.push_back({{"agent", r->subject}, {"metric", r->metric}, {"step", *r->rep}, {"value", r->value}});
    if (std::find(metrics.begin(), metrics.end(), r->metric) == metrics.end()) metrics.push_back(r->metric);
  }
  if (values.empty()) {
    c.absent = "No learning curve: this run recorded none (section curve; it trained no agent).";
    return c;
  }
  const json enc = {
      {"x", {{"field", "step"}, {"type", "quantitative"}, {"title", "training step"}}},
      {"y", {{"field", "value"}, {"type", "quantitative"}, {"title", nullptr}, {"scale", {{"zero", false}}}}},
      {"color", {{"field", "agent"}, {"type", "nominal"}, {"title", "agent"}}},
      {"tooltip", json::array({{{"field", "agent"}}, {{"field", "step"}}, {{"field", "value"}, {"format", ".4g"}}})}};
  c.spec = {{"data", {{"values", std::move(values)}}},
            {"facet", {{"field", "metric"}, {"type", "nominal"}, {"title", nullptr}, {"sort", metrics}}},
            {"columns", 3},
            {"spec",
             {{"width", 300},
              {"height", 170},
              {"encoding", enc},
              {"layer", json::array({{{"mark", {{"type", "line"}, {"strokeWidth", 1.5}}}},
                                     {{"mark", {{"type", "point"}, {"filled", true}, {"size", 14}}}}})}}},
            {"resolve", {{"scale", {{"x", "independent"}, {"y", "independent"}}}}}};
  return c;
}

Chart ab_forest(const MetricIndex& ix, const std::string& primary) {
  const std::string control = control_arm(ix);
  Chart c{"ab-forest", "Online A/B test: lift against the control",
          "Each arm's lift against the control arm" + (control.empty() ? std::string() : " (" + control + ")") +
              " in replicate 0, with its 95% delta-method interval (sections ab and ab_level); the red tick is the "
              "mean lift over the replicates (section ab_summary). One panel per metric" +
              (primary.empty() ? std::string() : ", the primary metric (" + metric_label(primary) + ") first") + ".",
          nullptr, ""};
  json values = json::array();
  const std::vector<std::string> order = metric_order(primary);
  for (std::size_t m = 0; m < order.size(); ++m)
    for (const std::string& arm : ix.subjects(keys::kAb)) {
      const MetricRow* r = ix.find(keys::kAb, arm, order[m], 0);
      if (!r) continue;
      json v = forest_row(*r, static_cast<int>(m));
      if (v.is_null()) continue;
      if (const MetricRow* s = ix.find(keys::kAbSummary, arm, order[m]); s && std::isfinite(s->value))
        v["mean"] = 100 * s->value;
      values.push_back(std::move(v));
    }
  if (values.empty()) {
    c.absent = "No A/B lifts: this run has no A/B test (section ab; the experiment block has no \"ab\").";
    return c;
  }
  c.spec = forest_spec(std::move(values), "arm", "lift against " + (control.empty() ? "the control" : control) +
                                                     " (%), 95% interval");
  return c;
}

Chart offline_against_online(const MetricIndex& ix, const std::string& primary) {
  Chart c{"offline-online", "Offline estimates against the online truth",
          "", nullptr, ""};
  // The online metric: the primary one where the ground truth compared it, else the first compared.
  std::string online;
  for (const MetricRow* r : ix.rows)
    if (r->section == keys::kAgreement && (online.empty() || r->metric == primary)) online = r->metric;
  c.caption = "Per offline metric (section offline), each A/B arm's offline estimate against its mean online lift" +
              (online.empty() ? std::string() : " in " + metric_label(online)) +
              " over the replicates (section ab_summary; the control arm at 0), with the Kendall tau between the "
              "two that the ground-truth stage computed (section agreement).";
  const std::string control = control_arm(ix);
  json values = json::array();
  if (!online.empty())
    for (const MetricRow* a : ix.rows) {
      if (a->section != keys::kAgreement || a->metric != online) continue;
      const std::string panel = a->subject + " (Kendall tau " + fixed(a->value, 2) + ")";
      for (const std::string& arm : ix.subjects(keys::kAbLevel)) {
        const MetricRow* off = ix.find(keys::kOffline, arm, a->subject);
        const MetricRow* on = ix.find(keys::kAbSummary, arm, online);
        if (!off || !std::isfinite(off->value)) continue;
        double lift = 0;
        if (on && std::isfinite(on->value))
          lift = 100 * on->value;
        else if (arm != control)
          continue;
        values.push_back({{"offline", panel}, {"policy", arm}, {"estimate", off->value}, {"lift", lift}});
      }
    }
  if (values.empty()) {
    c.absent = "No comparison: this run has no policy with both an offline estimate and an online lift "
               "(sections offline, ab_summary and agreement).";
    return c;
  }
  const json x = {{"field", "estimate"}, {"type", "quantitative"}, {"title", "offline estimate"},
                  {"scale", {{"zero", false}, {"padding", 12}}}};
  const json y = {{"field", "lift"}, {"type", "quantitative"},
                  {"title", "mean online lift, " + metric_label(online) + " (%)"}};
  c.spec = {{"data", {{"values", std::move(values)}}},
            {"facet", {{"field", "offline"}, {"type", "nominal"}, {"title", nullptr}, {"sort", nullptr}}},
            {"columns", 2},
            {"spec",
             {{"width", 360},
              {"height", 220},
              {"encoding", {{"x", x}, {"y", y}}},
              {"layer",
               json::array({{{"mark", {{"type", "point"}, {"filled", true}, {"size", 60}}},
                             {"encoding",
                              {{"color", {{"field", "policy"}, {"type", "nominal"}, {"title", "policy"}}},
                               {"tooltip", json::array({{{"field", "policy"}},
                                                        {{"field", "estimate"}, {"format", ".4g"}},
                                                        {{"field", "lift"}, {"format", ".2f"}}})}}}},
                            {{"mark", {{"type", "text"}, {"align", "left"}, {"dx", 6}, {"fontSize", 10}}},
                             {"encoding", {{"text", {{"field", "policy"}}}}}}})}}},
            {"resolve", {{"scale", {{"x", "independent"}}}}}};
  return c;
}

Chart action_distributions(const MetricIndex& ix) {
  Chart c{"actions", "Distribution of each action dimension per policy",
          "The share of each policy's actions in each of 20 bins over [-1, 1], per action dimension (the fusion "
          "weight's exponent or bias it sets), on the same probe of up to 2048 logged states of the exploration "
          "(section action_histogram): what IntegratedRL-MTF Figs. 2 and 3 and BatchRL-MTF Figs. 5 to 7 show "
          "over live traffic, here on fixed states so that only the policies differ.",
          nullptr, ""};
  json values = json::array();
  std::vector<std::string> dims;
  for (const MetricRow* r : ix.rows) {
    if (r->section != keys::kActionHistogram) continue;
    const json d = details_of(r);
    const auto counts = d.find(keys::detail::kCounts);
    const double lo = detail_number(d, keys::detail::kLo), hi = detail_number(d, keys::detail::kHi);
    if (counts == d.end() || !counts->is_array() || counts->empty() || !(hi > lo)) continue;
    double total = 0;
    for (const json& k : *counts) total += k.is_number() ? k.get<double>() : 0.0;
    if (!(total > 0)) continue;
    const std::string dim = r->metric + " " + detail_text(d, keys::detail::kLabel);
    if (std::find(dims.begin(), dims.end(), dim) == dims.end()) dims.push_back(dim);
    const double width = (hi - lo) / static_cast<double>(counts->size());
    for (std::size_t b = 0; b < counts->size(); ++b) {
      const double k = (*counts)[b].is_number() ? (*counts)[b].get<double>() : 0.0;
      values.push_back({{"policy", r->subject},
                        {"dim", dim},
                        {"lo", lo + width * static_cast<double>(b)},
                        {"hi", lo + width * static_cast<double>(b + 1)},
                        {"share", k / total}});
    }
  }
  if (values.empty()) {
    c.absent = "No action distributions: this run recorded none (section action_histogram, written by the "
               "offline evaluation of runs made since it was added).";
    return c;
  }
  c.spec = {{"data", {{"values", std::move(values)}}},
            {"facet",
             {{"row", {{"field", "policy"}, {"type", "nominal"}, {"title", nullptr}, {"sort", nullptr},
                       {"header", {{"labelAngle", 0}, {"labelAlign", "left"}}}}},
              {"column", {{"field", "dim"}, {"type", "nominal"}, {"title", nullptr}, {"sort", dims},
                          {"header", {{"labelFontSize", 9}}}}}}},
            {"spec",
             {{"width", 80},
              {"height", 45},
              {"mark", {{"type", "rect"}, {"color", "#4c78a8"}}},
              {"encoding",
               {{"x", {{"field", "lo"}, {"type", "quantitative"}, {"title", "action"},
                       {"scale", {{"domain", {-1, 1}}}}, {"axis", {{"values", {-1, 0, 1}}}}}},
                {"x2", {{"field", "hi"}}},
                {"y", {{"field", "share"}, {"type", "quantitative"}, {"title", "share"},
                       {"axis", {{"format", ".0%"}, {"tickCount", 2}}}}},
                {"tooltip", json::array({{{"field", "policy"}}, {{"field", "dim"}}, {{"field", "lo"}, {"format", ".2f"}},
                                         {{"field", "hi"}, {"format", ".2f"}},
                                         {{"field", "share"}, {"format", ".1%"}}})}}}}}};
  return c;
}

Chart daily(const MetricIndex& ix) {
  Chart c{"daily", "Daily active users and return rate per arm",
          "Replicate 0 of the A/B test, per day after the pre-period (section ab_daily): the share of each arm's "
          "users active that day, and the share of those who came back the next day (none for the last day).",
          nullptr, ""};
  json values = json::array();
  for (const MetricRow* r : ix.rows) {
    if (r->section != keys::kAbDaily || !r->rep || !std::isfinite(r->value)) continue;
    const std::string what = r->metric == keys::kActiveShare ? "daily active users (share of the arm)"
                             : r->metric == keys::kReturnRate ? "next-day return rate"
                                                              : r->metric;
    values.push_back({{"metric", what}, {"arm", r->subject}, {"day", *r->rep + 1}, {"value", r->value}});
  }
  if (values.empty()) {
    c.absent = "No daily figures: this run recorded none (section ab_daily, written by the A/B test of runs made "
               "since it was added).";
    return c;
  }
  c.spec = {{"data", {{"values", std::move(values)}}},
            {"facet", {{"field", "metric"}, {"type", "nominal"}, {"title", nullptr}, {"sort", nullptr}}},
            {"spec",
             {{"width", 360},
              {"height", 200},
              {"encoding",
               {{"x", {{"field", "day"}, {"type", "ordinal"}, {"title", "A/B day"}, {"axis", {{"labelAngle", 0}}}}},
                {"y", {{"field", "value"}, {"type", "quantitative"}, {"title", nullptr},
                       {"scale", {{"zero", false}}}, {"axis", {{"format", ".1%"}}}}},
                {"color", {{"field", "arm"}, {"type", "nominal"}, {"title", "arm"}}},
                {"tooltip", json::array({{{"field", "arm"}}, {{"field", "day"}}, {{"field", "value"}, {"format", ".2%"}}})}}},
              {"layer", json::array({{{"mark", {{"type", "line"}}}}, {{"mark", kPoint}}})}}},
            {"resolve", {{"scale", {{"x", "independent"}, {"y", "independent"}}}}}};
  return c;
}

Chart exploration_cost(const MetricIndex& ix) {
  Chart c{"exploration", "Exploration cost",
          "Each exploration group's lift against the control group over the exploration days, with its 95% "
          "interval (section exploration): what exploring cost its users.",
          nullptr, ""};
  json values = json::array();
  const std::vector<std::string> order = metric_order("");
  for (std::size_t m = 0; m < order.size(); ++m)
    for (const MetricRow* r : ix.rows) {
      if (r->section != keys::kExploration || r->metric != order[m] || r->rep) continue;
      json v = forest_row(*r, static_cast<int>(m));
      if (!v.is_null()) values.push_back(std::move(v));
    }
  if (values.empty()) {
    c.absent = "No exploration cost: this run has no control group for its exploration (section exploration; "
               "the experiment block's \"exploration_control\").";
    return c;
  }
  c.spec = forest_spec(std::move(values), "group", "lift against the control group (%), 95% interval");
  return c;
}

// Renders every chart's spec with Vega-Lite and Vega into its element as SVG.
// When all are done, each chart element holds data-rendered="yes" (or
// data-error) and data-box (its SVG's page box in CSS pixels), and the body
// data-charts-done: tests/html_report_test.sh reads them.
constexpr const char* kRenderScript = R"js(
(function () {
  var specs = JSON.parse(document.getElementById('mtf-specs').textContent);
  function fail(el, e) {
    el.setAttribute('data-error', String(e && e.message || e));
    el.textContent = 'This chart could not be drawn: ' + String(e && e.message || e);
  }
  var jobs = Object.keys(specs).map(function (id) {
    var el = document.querySelector('[data-chart="' + id + '"]');
    try {
      var view = new vega.View(vega.parse(vegaLite.compile(specs[id]).spec),
                               {renderer: 'svg', container: el, hover: true});
      return view.runAsync().then(function () {
        var svg = el.querySelector('svg');
        if (!svg) throw new Error('no SVG was drawn');
        var r = svg.getBoundingClientRect();
        el.setAttribute('data-box', [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]
                                      .map(Math.round).join(','));
        el.setAttribute('data-rendered', 'yes');
      }).catch(function (e) { fail(el, e); });
    } catch (e) {
      fail(el, e);
      return Promise.resolve();
    }
  });
  Promise.all(jobs).then(function () {
    document.body.setAttribute('data-page-height', String(document.documentElement.scrollHeight));
    document.body.setAttribute('data-charts-done', String(jobs.length));
  });
})();
)js";

constexpr const char* kStyle = R"css(
body { font-family: sans-serif; margin: 1.5em 2em; color: #222; max-width: 1300px; }
h1 { font-size: 1.5em; }
h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
p.caption { max-width: 60em; color: #444; }
p.absent { color: #888; font-style: italic; }
.vis { overflow-x: auto; }
footer { margin-top: 3em; color: #888; font-size: 0.85em; }
)css";

}  // namespace

std::string report_html(const std::filesystem::path& run_db, bool allow_partial) {
  const RunContents run = read_run(run_db, /*with_transitions=*/false, /*with_rows=*/false, allow_partial);
  if (run.metrics.empty() && run.finished_at.empty())  // read with allow_partial
    throw ExperimentError(run.info.scenario_name + ": the run did not finish and wrote no figure yet (it stopped "
                                                   "inside its exploration): nothing to chart");
  return report_html(run);
}

std::string report_html(const RunContents& run) {
  if (run.metrics.empty())
    throw ExperimentError(run.info.scenario_name +
                          ": the run database has no experiment metrics (run a scenario with an \"experiment\" block)");
  std::string note;
  const ExperimentSpec spec = stored_experiment(run, note);
  return report_html(run, spec, note);
}

std::string report_html(const RunContents& run, const ExperimentSpec& spec, const std::string& note) {
  if (run.metrics.empty())
    throw ExperimentError(run.info.scenario_name +
                          ": the run database has no experiment metrics (run a scenario with an \"experiment\" block)");
  const MetricIndex ix(run.metrics);
  const std::string primary = spec.ab ? spec.ab->primary : std::string();
  const std::vector<Chart> charts = {learning_curves(ix),      ab_forest(ix, primary),
                                     offline_against_online(ix, primary), action_distributions(ix),
                                     daily(ix),                exploration_cost(ix)};
  const std::string title = run.info.scenario_name + ": experiment report";
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" << escape_html(title)
    << "</title>\n<style>" << kStyle << "</style>\n</head>\n<body>\n<h1>" << escape_html(title) << "</h1>\n<p>";
  if (run.finished_at.empty())
    o << "<strong>This run did not finish</strong> (started " << escape_html(run.started_at)
      << "): the charts hold only the stages it completed. ";
  o << "Code " << escape_html(run.info.code_version) << ", seed " << run.info.seed << ", " << run.info.threads
    << (run.info.threads == 1 ? " thread" : " threads");
  bool data_parallel = false;
  for (const MetricRow& m : run.metrics) {
    if (m.section != keys::kRun || m.subject != keys::kAll) continue;
    if (m.metric == keys::kRanks && m.value > 1) o << " in each of " << static_cast<long long>(m.value) << " MPI ranks";
    if (m.metric == keys::kDataParallel) data_parallel = true;
  }
  o << (data_parallel ? ", each rank holding its users' rows and the agents trained and evaluated offline "
                        "data-parallel over the ranks (those figures depend on the rank count; the simulation does not)"
                      : " (results do not depend on it)")
    << ". The tables behind the charts: <code>mtfsim report</code>.</p>\n";
  if (!note.empty()) o << "<p>" << escape_html(note) << "</p>\n";
  json specs = json::object();
  for (const Chart& c : charts) {
    o << "<section id=\"" << c.id << "\">\n<h2>" << escape_html(c.title) << "</h2>\n";
    if (c.spec.is_null()) {
      o << "<p class=\"absent\" data-absent=\"" << c.id << "\">" << escape_html(c.absent) << "</p>\n</section>\n";
      continue;
    }
    o << "<p class=\"caption\">" << escape_html(c.caption) << "</p>\n<div class=\"vis\" data-chart=\"" << c.id
      << "\"></div>\n</section>\n";
    specs[c.id] = c.spec;
  }
  o << "<footer>Charts: Vega " << assets::vega_version() << " and Vega-Lite " << assets::vega_lite_version()
    << " (BSD-3-Clause), inlined in this file; drawn as SVG by the browser, no network needed.</footer>\n";
  // JSON in a script element: "<" escaped so that no string can end the element.
  std::string spec_text = specs.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string safe;
  safe.reserve(spec_text.size());
  for (char ch : spec_text) safe += ch == '<' ? std::string("\\u003c") : std::string(1, ch);
  o << "<script>" << assets::vega_js() << "</script>\n<script>" << assets::vega_lite_js() << "</script>\n"
    << "<script type=\"application/json\" id=\"mtf-specs\">" << safe << "</script>\n<script>" << kRenderScript
    << "</script>\n</body>\n</html>\n";
  return o.str();
}

}  // namespace mtf::experiments
