#pragma once
// custody::wait_for_graph: who waits for whom, drawn from one custody::inspect() snapshot.
//
//   const custody::wait_for_graph graph(custody::inspect());
//   std::fputs(graph.to_text().c_str(), stderr);   // each task, what it waits on, who is at
//                                                  // the other end; a cycle named last
//   std::ofstream("wait_for.dot") << graph.to_dot();  // dot -Tsvg wait_for.dot > wait_for.svg
//
// Nodes are the tasks of named task groups, named channels, stores and subscriptions. Edges:
// - task -> channel: the task is blocked sending on, or receiving from, the channel (each case
//   of a blocked select is an edge);
// - channel -> task: the task last completed an operation at the channel's other end: for a
//   task waiting to receive, the channel's last sender; for one waiting to send, its last
//   receiver. The drawing shows both ends of every named channel.
// A path task -> channel -> task -> ... back to the first task, every task on it blocked, is a
// likely deadlock: each waits for a task that last served it and is itself waiting. "Likely":
// the snapshot shows who served the channel last, not who will serve it next.
//
// Tasks are identified by name (a channel remembers the name of the task at each end), so tasks
// that share a name are drawn as one. Only named objects appear: an unnamed channel shows as
// "an unnamed channel" on its waiting task and has no node.

#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "inspection.hpp"

namespace custody {

/// One channel a blocked task waits on.
struct wait_edge {
  std::string channel;        ///< the channel's name; empty for an unnamed channel
  bool sending = false;       ///< true: waits to send; false: waits to receive
  std::string other_end;      ///< the task that last used the other end; empty when none is known
  bool subscription = false;  ///< the channel is a named subscription (of `store`)
  std::string store;          ///< for a subscription: its store's name
};

/// One task of a named task group, as the graph sees it.
struct wait_for_task {
  std::string group;                       ///< its group's name
  std::string name;                        ///< its name
  task_state state = task_state::running;  ///< running, blocked or finished
  std::string operation;                   ///< task_report::operation (while blocked)
  std::int64_t blocked_ms = 0;             ///< task_report::blocked_ms (while blocked)
  std::vector<wait_edge> waits;            ///< while blocked: every channel it waits on
};

/// The wait-for graph of one snapshot. A plain value: copy it, keep it, render it later.
class wait_for_graph {
 public:
  wait_for_graph() = default;
  /// Builds the graph of every named task group in `snapshot`. Throws std::bad_alloc.
  explicit wait_for_graph(const inspection& snapshot) {
    for (const channel_report& c : snapshot.channels) channels_.push_back(c);
    for (const store_report& s : snapshot.stores) stores_.push_back(s.name);
    for (const subscriber_report& s : snapshot.subscribers) subscriptions_.push_back(s);
    for (const task_group_report& g : snapshot.task_groups) {
      for (const task_report& t : g.tasks) tasks_.push_back(make_task(g.name, t));
    }
    find_cycle();
  }

  /// Every task of the snapshot's named groups, group by group in spawn order.
  const std::vector<wait_for_task>& tasks() const noexcept { return tasks_; }

  /// A likely deadlock: task, channel, task, channel, ..., the first task again; empty when
  /// the snapshot has no such cycle. The first cycle found, from the first task on it.
  const std::vector<std::string>& cycle() const noexcept { return cycle_; }
  /// Whether cycle() found one.
  bool likely_deadlock() const noexcept { return !cycle_.empty(); }

  /// One paragraph per task (what it waits on, who last used the other end), then either
  /// "likely deadlock: A -> ch1 -> B -> ch2 -> A" or "no wait-for cycle".
  std::string to_text() const {
    std::string out;
    for (const wait_for_task& t : tasks_) {
      out += "task \"" + t.name + "\" of group \"" + t.group + "\": ";
      if (t.state != task_state::blocked) {
        out += std::string(to_string(t.state)) + "\n";
        continue;
      }
      out += "blocked for " + std::to_string(t.blocked_ms) + " ms in " + t.operation + "\n";
      for (const wait_edge& w : t.waits) {
        out += std::string("  waits to ") + (w.sending ? "send on " : "receive from ") +
               channel_text(w) + "; ";
        out += w.other_end.empty() ? "no task known at the other end\n"
                                   : std::string(w.sending ? "last receiver" : "last sender") +
                                         " \"" + w.other_end + "\"\n";
      }
    }
    if (cycle_.empty()) return out + "no wait-for cycle\n";
    out += "likely deadlock: ";
    for (std::size_t i = 0; i < cycle_.size(); ++i) out += (i ? " -> " : "") + cycle_[i];
    return out + "\n";
  }

  /// The graph in Graphviz DOT: tasks as ellipses (blocked ones filled), channels as boxes,
  /// stores as cylinders, subscriptions as notes; solid edges task -> channel it waits on,
  /// dashed edges channel -> the task last at each end, dotted subscription -> its store; the
  /// edges of a likely deadlock in red.
  std::string to_dot() const {
    std::string out =
        "digraph wait_for {\n  rankdir=LR;\n  node [fontname=\"sans\"];\n  edge "
        "[fontname=\"sans\"];\n";
    std::set<std::string> task_nodes;
    for (const wait_for_task& t : tasks_) {
      if (!task_nodes.insert(t.name).second) continue;
      std::string label = t.name + "\\n" + std::string(to_string(t.state));
      if (t.state == task_state::blocked) label += " " + std::to_string(t.blocked_ms) + " ms";
      out += "  " + dot_id("task", t.name) + " [shape=ellipse,label=" + dot_quote(label, true) +
             (t.state == task_state::blocked ? ",style=filled,fillcolor=\"#f4d6d6\"" : "") + "];\n";
    }
    // A task that used a channel but belongs to no named group still gets a node.
    const auto task_node = [&](const std::string& name) {
      if (task_nodes.insert(name).second) {
        out += "  " + dot_id("task", name) +
               " [shape=ellipse,style=dashed,label=" + dot_quote(name, false) + "];\n";
      }
      return dot_id("task", name);
    };
    for (const channel_report& c : channels_) {
      out += "  " + dot_id("channel", c.name) + " [shape=box,label=" +
             dot_quote(c.name + "\\ncapacity " + std::to_string(c.capacity) + ", length " +
                           std::to_string(c.length),
                       true) +
             "];\n";
    }
    for (const std::string& s : stores_) {
      out += "  " + dot_id("store", s) + " [shape=cylinder,label=" + dot_quote(s, false) + "];\n";
    }
    for (const subscriber_report& s : subscriptions_) {
      out += "  " + dot_id("channel", s.name) +
             " [shape=note,label=" + dot_quote(s.name + "\\n" + s.policy, true) + "];\n";
      if (!s.store.empty()) {
        out += "  " + dot_id("channel", s.name) + " -> " + dot_id("store", s.store) +
               " [style=dotted,label=\"of store\"];\n";
      }
    }
    for (const channel_report& c : channels_) {
      if (!c.last_sender.empty()) {
        const std::string to = task_node(c.last_sender);
        out += "  " + dot_id("channel", c.name) + " -> " + to +
               " [style=dashed,label=\"last sender\"" +
               (on_cycle(c.name, c.last_sender) ? ",color=red" : "") + "];\n";
      }
      if (!c.last_receiver.empty()) {
        const std::string to = task_node(c.last_receiver);
        out += "  " + dot_id("channel", c.name) + " -> " + to +
               " [style=dashed,label=\"last receiver\"" +
               (on_cycle(c.name, c.last_receiver) ? ",color=red" : "") + "];\n";
      }
    }
    std::size_t unnamed = 0;
    for (const wait_for_task& t : tasks_) {
      for (const wait_edge& w : t.waits) {
        std::string target;
        if (w.channel.empty()) {
          target = dot_id("unnamed", std::to_string(unnamed++));
          out += "  " + target + " [shape=box,style=dashed,label=\"an unnamed channel\"];\n";
        } else {
          target = dot_id("channel", w.channel);
        }
        out += "  " + dot_id("task", t.name) + " -> " + target + " [label=\"" +
               (w.sending ? "waits to send" : "waits to receive") + "\"" +
               (on_cycle(t.name, w.channel) ? ",color=red,penwidth=2" : "") + "];\n";
      }
    }
    return out + "}\n";
  }

 private:
  wait_for_task make_task(const std::string& group, const task_report& t) const {
    wait_for_task made;
    made.group = group;
    made.name = t.name;
    made.state = t.state;
    made.operation = t.operation;
    made.blocked_ms = t.blocked_ms;
    for (const wait_report& w : t.waits_on) {
      wait_edge e;
      e.channel = w.channel;
      e.sending = w.sending;
      if (const channel_report* c = channel(w.channel)) {
        e.other_end = w.sending ? c->last_receiver : c->last_sender;
      } else if (const subscriber_report* s = subscription(w.channel)) {
        e.subscription = true;
        e.store = s->store;
      }
      made.waits.push_back(std::move(e));
    }
    return made;
  }

  const channel_report* channel(const std::string& name) const noexcept {
    return name.empty() ? nullptr : detail::find_named(channels_, name);
  }
  const subscriber_report* subscription(const std::string& name) const noexcept {
    return name.empty() ? nullptr : detail::find_named(subscriptions_, name);
  }

  static std::string channel_text(const wait_edge& w) {
    if (w.channel.empty()) return "an unnamed channel";
    if (w.subscription) return "subscription \"" + w.channel + "\" of store \"" + w.store + "\"";
    return "\"" + w.channel + "\"";
  }

  // Depth-first search over blocked tasks: an edge A -> B through channel c when A waits on c
  // and B, blocked too, last used c's other end. The first back edge closes a cycle. Iterative:
  // a chain of many thousand blocked tasks must not exhaust the stack.
  void find_cycle() {
    std::map<std::string, const wait_for_task*> blocked;
    for (const wait_for_task& t : tasks_) {
      if (t.state == task_state::blocked) blocked.emplace(t.name, &t);
    }
    std::map<std::string, int> colour;  // absent: unseen; 1: on the current path; 2: done
    for (const auto& [name, task] : blocked) {
      if (!colour.contains(name) && search_from(*task, blocked, colour)) return;
    }
  }

  bool search_from(const wait_for_task& start,
                   const std::map<std::string, const wait_for_task*>& blocked,
                   std::map<std::string, int>& colour) {
    struct frame {
      const wait_for_task* task;
      std::size_t next_wait = 0;  // the next of its waits to follow
    };
    std::vector<frame> stack{{&start}};
    std::vector<std::string> path{start.name};  // task, channel, task, channel, ...
    colour[start.name] = 1;
    while (!stack.empty()) {
      frame& top = stack.back();
      if (top.next_wait == top.task->waits.size()) {
        colour[top.task->name] = 2;
        stack.pop_back();
        path.pop_back();                      // the task
        if (!stack.empty()) path.pop_back();  // the channel that led to it
        continue;
      }
      const wait_edge& w = top.task->waits[top.next_wait++];
      const auto next = blocked.find(w.other_end);
      if (w.other_end.empty() || next == blocked.end()) continue;
      const auto seen = colour.find(w.other_end);
      if (seen != colour.end() && seen->second == 1) {
        // Back to a task on the path: the cycle runs from it to here and back to it.
        path.push_back(w.channel);
        std::size_t from = 0;
        while (path[from] != w.other_end) from += 2;
        cycle_.assign(path.begin() + static_cast<std::ptrdiff_t>(from), path.end());
        cycle_.push_back(w.other_end);
        return true;
      }
      if (seen != colour.end()) continue;  // done: no cycle through it
      path.push_back(w.channel);
      path.push_back(w.other_end);
      colour[w.other_end] = 1;
      stack.push_back({next->second});
    }
    return false;
  }

  // Whether the edge between task `task` and channel `channel` (either way) is on the cycle.
  bool on_cycle(const std::string& a, const std::string& b) const noexcept {
    for (std::size_t i = 0; i + 1 < cycle_.size(); ++i) {
      if ((cycle_[i] == a && cycle_[i + 1] == b) || (cycle_[i] == b && cycle_[i + 1] == a)) {
        return true;
      }
    }
    return false;
  }

  // A DOT string literal. `keep_newlines`: "\n" sequences in `text` stay line breaks.
  static std::string dot_quote(std::string_view text, bool keep_newlines) {
    std::string out = "\"";
    for (std::size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (keep_newlines && c == '\\' && i + 1 < text.size() && text[i + 1] == 'n') {
        out += "\\n";
        ++i;
      } else if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    return out + "\"";
  }
  static std::string dot_id(std::string_view kind, std::string_view name) {
    return dot_quote(std::string(kind) + ":" + std::string(name), false);
  }

  std::vector<channel_report> channels_;
  std::vector<std::string> stores_;
  std::vector<subscriber_report> subscriptions_;
  std::vector<wait_for_task> tasks_;
  std::vector<std::string> cycle_;
};

}  // namespace custody
