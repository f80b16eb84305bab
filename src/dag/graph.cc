#include "dag/graph.h"

#include <algorithm>
#include <map>
#include <queue>
#include <set>

#include <fmt/format.h>

namespace rollout::dag {

namespace {

struct Edge {
  StageId need;
  Mark mark;  // the needs entry
};

// Finds cycles with an iterative depth-first search (plans may have thousands of stages).
void report_cycles(const plan::Plan& plan, const std::vector<std::vector<Edge>>& edges,
                   Diagnostics& diagnostics) {
  enum class Color { white, grey, black };
  const std::size_t n = edges.size();
  std::vector<Color> color(n, Color::white);
  std::set<std::set<StageId>> reported;
  for (StageId start = 0; start < n; ++start) {
    if (color[start] != Color::white) continue;
    // Frame: node and the index of the next edge to follow.
    std::vector<std::pair<StageId, std::size_t>> stack{{start, 0}};
    color[start] = Color::grey;
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next == edges[node].size()) {
        color[node] = Color::black;
        stack.pop_back();
        continue;
      }
      const Edge edge = edges[node][next++];
      if (color[edge.need] == Color::white) {
        color[edge.need] = Color::grey;
        stack.push_back({edge.need, 0});
      } else if (color[edge.need] == Color::grey) {
        // The stack from edge.need up to node is the cycle; node needs edge.need.
        auto it = std::find_if(stack.begin(), stack.end(),
                               [&](const auto& frame) { return frame.first == edge.need; });
        std::vector<StageId> cycle;
        for (auto f = it; f != stack.end(); ++f) cycle.push_back(f->first);
        std::set<StageId> members(cycle.begin(), cycle.end());
        if (!reported.insert(members).second) continue;
        // Stack order is "needs" order; print it in run order: each stage before its dependent.
        std::string path = plan.stages[edge.need].name;
        for (auto r = cycle.rbegin(); r != cycle.rend(); ++r) {
          path += " -> " + plan.stages[*r].name;
        }
        diagnostics.error(edge.mark, fmt::format("dependency cycle: {}", path));
      }
    }
  }
}

std::string selection_label(const plan::Stage& s) {
  std::vector<std::string> parts;
  if (!s.groups.empty()) {
    std::string g = "groups: ";
    for (std::size_t i = 0; i < s.groups.size(); ++i) g += (i ? ", " : "") + s.groups[i];
    parts.push_back(g);
  }
  for (const upswift::Filter& f : s.filters) {
    parts.push_back(
        fmt::format("{} {} {}", upswift::name(f.type), upswift::name(f.operand), f.value));
  }
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? "\n" : "") + parts[i];
  return out;
}

std::string gate_label(const plan::Stage& s) {
  return fmt::format("bake {}, success >= {}, failed <= {}{}", format_duration(s.gate.bake),
                     format_threshold(s.gate.min_success), format_threshold(s.gate.max_failed),
                     s.approval_required ? "\napproval required" : "");
}

std::string escape_dot(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string escape_mermaid(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"')
      out += "#quot;";
    else if (c == '\n')
      out += "<br/>";
    else if (c == '<')
      out += "#lt;";
    else if (c == '>')
      out += "#gt;";
    else
      out += c;
  }
  return out;
}

}  // namespace

std::optional<Graph> build(const plan::Plan& plan, Diagnostics& diagnostics) {
  const std::size_t n = plan.stages.size();
  std::map<std::string, StageId> by_name;
  for (StageId i = 0; i < n; ++i) by_name.emplace(plan.stages[i].name, i);

  std::vector<std::vector<Edge>> edges(n);
  bool unresolved = false;
  for (StageId i = 0; i < n; ++i) {
    std::set<StageId> seen;
    for (const plan::StageRef& ref : plan.stages[i].needs) {
      auto it = by_name.find(ref.name);
      if (it == by_name.end()) {
        unresolved = true;  // the loader has reported it
        continue;
      }
      if (seen.insert(it->second).second) edges[i].push_back({it->second, ref.mark});
    }
  }
  const std::size_t errors_before = diagnostics.error_count();
  report_cycles(plan, edges, diagnostics);
  if (unresolved || diagnostics.error_count() > errors_before) return std::nullopt;

  Graph g;
  g.needs.resize(n);
  g.dependents.resize(n);
  g.level.assign(n, 0);
  std::vector<std::size_t> waiting(n, 0);
  for (StageId i = 0; i < n; ++i) {
    for (const Edge& e : edges[i]) {
      g.needs[i].push_back(e.need);
      g.dependents[e.need].push_back(i);
    }
    waiting[i] = edges[i].size();
  }
  // Kahn's algorithm with a min-heap on the plan index: the order is stable and readable.
  std::priority_queue<StageId, std::vector<StageId>, std::greater<>> ready;
  for (StageId i = 0; i < n; ++i) {
    if (waiting[i] == 0) ready.push(i);
  }
  while (!ready.empty()) {
    StageId s = ready.top();
    ready.pop();
    g.order.push_back(s);
    for (StageId d : g.dependents[s]) {
      g.level[d] = std::max(g.level[d], g.level[s] + 1);
      if (--waiting[d] == 0) ready.push(d);
    }
  }
  return g;
}

std::string to_dot(const plan::Plan& plan, const Graph& graph) {
  std::string out =
      fmt::format("digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, style=rounded];\n",
                  escape_dot(plan.name));
  for (StageId i : graph.order) {
    const plan::Stage& s = plan.stages[i];
    out += fmt::format("  \"{}\" [label=\"{}\\n{}\\n{}\"{}];\n", escape_dot(s.name),
                       escape_dot(s.name), escape_dot(selection_label(s)),
                       escape_dot(gate_label(s)), s.approval_required ? ", peripheries=2" : "");
  }
  for (StageId i : graph.order) {
    for (StageId d : graph.dependents[i]) {
      out += fmt::format("  \"{}\" -> \"{}\";\n", escape_dot(plan.stages[i].name),
                         escape_dot(plan.stages[d].name));
    }
  }
  out += "}\n";
  return out;
}

std::string to_mermaid(const plan::Plan& plan, const Graph& graph) {
  // Mermaid ids must be simple; stage names may hold '.' or '-', so number them.
  std::string out = "flowchart LR\n";
  for (StageId i : graph.order) {
    const plan::Stage& s = plan.stages[i];
    out += fmt::format("  s{}[\"{}<br/>{}<br/>{}\"]\n", i, escape_mermaid(s.name),
                       escape_mermaid(selection_label(s)), escape_mermaid(gate_label(s)));
  }
  for (StageId i : graph.order) {
    for (StageId d : graph.dependents[i]) out += fmt::format("  s{} --> s{}\n", i, d);
  }
  return out;
}

}  // namespace rollout::dag
