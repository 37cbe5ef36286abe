#pragma once
// inspection::to_text() and inspection::to_json(): formatting only, no access to live objects.

#include <cstdio>
#include <string>
#include <string_view>

#include "../inspection.hpp"

namespace custody {

namespace detail::render {

/// `text` as a JSON string literal: quotes, backslashes and control characters escaped.
inline std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

inline std::string quoted_or(std::string_view name, std::string_view unnamed) {
  return name.empty() ? std::string(unnamed) : "\"" + std::string(name) + "\"";
}

inline std::string blocked_text(const blocked_report& b) {
  std::string line =
      b.cases > 1 ? "select case " + std::to_string(b.case_index) + " of " + std::to_string(b.cases)
                  : std::string("plain");
  line += ", " + (b.task.empty() ? std::string("not a task") : "task \"" + b.task + "\"");
  return line + ", blocked " + std::to_string(b.blocked_ms) + " ms";
}

inline std::string blocked_json(const blocked_report& b) {
  return "{\"task\":" + json_string(b.task) + ",\"case\":" + std::to_string(b.case_index) +
         ",\"cases\":" + std::to_string(b.cases) +
         ",\"blocked_ms\":" + std::to_string(b.blocked_ms) + "}";
}

inline std::string wait_json(const wait_report& w) {
  return "{\"channel\":" + json_string(w.channel) +
         ",\"sending\":" + (w.sending ? "true" : "false") + "}";
}

template <class Item, class Render>
std::string json_array(const std::vector<Item>& items, Render render) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ",";
    out += render(items[i]);
  }
  return out + "]";
}

inline const char* yes_no(bool b) noexcept { return b ? "true" : "false"; }

inline set_status status_at(std::size_t index) noexcept { return static_cast<set_status>(index); }

/// "accepted 3, rejected 1": the statuses set() returned at least once; empty if none.
inline std::string set_answers_text(const set_answer_counts& counts) {
  std::string out;
  for (std::size_t i = 0; i < set_status_count; ++i) {
    if (counts.by_status[i] == 0) continue;
    if (!out.empty()) out += ", ";
    out += std::string(to_string(status_at(i))) + " " + std::to_string(counts.by_status[i]);
  }
  return out;
}

/// {"accepted":3,"rejected":1,...}: every status, zeros included.
inline std::string set_answers_json(const set_answer_counts& counts) {
  std::string out = "{";
  for (std::size_t i = 0; i < set_status_count; ++i) {
    if (i) out += ",";
    out += json_string(set_status_key(status_at(i))) + ":" + std::to_string(counts.by_status[i]);
  }
  return out + "}";
}

}  // namespace detail::render

inline std::string inspection::to_text() const {
  using namespace detail::render;
  std::string out;
  for (const task_group_report& g : task_groups) {
    out += "task group \"" + g.name + "\"\n";
    for (const task_report& t : g.tasks) {
      out += "  task \"" + t.name + "\": " + std::string(to_string(t.state));
      if (t.state == task_state::blocked) {
        out += " in " + t.operation + " for " + std::to_string(t.blocked_ms) + " ms";
      }
      out += "\n";
    }
  }
  for (const channel_report& c : channels) {
    out += "channel \"" + c.name + "\": capacity " + std::to_string(c.capacity) + ", length " +
           std::to_string(c.length) + (c.closed ? ", closed\n" : ", open\n");
    out += "  sends " + std::to_string(c.sends) + ", receives " + std::to_string(c.receives) +
           ", blocked " + std::to_string(c.blocked_ms_total) + " ms in total, last sender " +
           quoted_or(c.last_sender, "none") + ", last receiver " +
           quoted_or(c.last_receiver, "none") + "\n";
    for (const blocked_report& b : c.senders) out += "  sender: " + blocked_text(b) + "\n";
    for (const blocked_report& b : c.receivers) out += "  receiver: " + blocked_text(b) + "\n";
    if (c.unlisted) out += "  and " + std::to_string(c.unlisted) + " more blocked\n";
  }
  for (const store_report& s : stores) {
    out += "store \"" + s.name + "\": version " + std::to_string(s.version) + ", publishes " +
           std::to_string(s.publishes) + ", pending sets " + std::to_string(s.pending_sets) +
           (s.closed ? ", closed\n" : ", open\n");
    if (const std::string answers = set_answers_text(s.set_answers); !answers.empty()) {
      out += "  set answers: " + answers + "\n";
    }
  }
  for (const subscriber_report& s : subscribers) {
    out += "subscriber \"" + s.name + "\" of store " + quoted_or(s.store, "(unnamed)") + ": " +
           s.policy + ", backlog " + std::to_string(s.backlog) + ", missed " +
           std::to_string(s.missed) + (s.closed ? ", closed\n" : "\n");
  }
  return out;
}

inline std::string inspection::to_json() const {
  using namespace detail::render;
  const std::string groups = json_array(task_groups, [](const task_group_report& g) {
    return "{\"name\":" + json_string(g.name) + ",\"tasks\":" +
           json_array(g.tasks,
                      [](const task_report& t) {
                        return "{\"name\":" + json_string(t.name) +
                               ",\"state\":" + json_string(std::string(to_string(t.state))) +
                               ",\"operation\":" + json_string(t.operation) +
                               ",\"blocked_ms\":" + std::to_string(t.blocked_ms) +
                               ",\"waits_on\":" + json_array(t.waits_on, wait_json) + "}";
                      }) +
           "}";
  });
  const std::string chans = json_array(channels, [](const channel_report& c) {
    return "{\"name\":" + json_string(c.name) + ",\"capacity\":" + std::to_string(c.capacity) +
           ",\"length\":" + std::to_string(c.length) + ",\"closed\":" + yes_no(c.closed) +
           ",\"senders\":" + json_array(c.senders, blocked_json) +
           ",\"receivers\":" + json_array(c.receivers, blocked_json) +
           ",\"unlisted\":" + std::to_string(c.unlisted) +
           ",\"last_sender\":" + json_string(c.last_sender) +
           ",\"last_receiver\":" + json_string(c.last_receiver) +
           ",\"sends\":" + std::to_string(c.sends) + ",\"receives\":" + std::to_string(c.receives) +
           ",\"blocked_ms_total\":" + std::to_string(c.blocked_ms_total) + "}";
  });
  const std::string store_list = json_array(stores, [](const store_report& s) {
    return "{\"name\":" + json_string(s.name) + ",\"version\":" + std::to_string(s.version) +
           ",\"publishes\":" + std::to_string(s.publishes) +
           ",\"pending_sets\":" + std::to_string(s.pending_sets) +
           ",\"set_answers\":" + set_answers_json(s.set_answers) +
           ",\"closed\":" + yes_no(s.closed) + "}";
  });
  const std::string subs = json_array(subscribers, [](const subscriber_report& s) {
    return "{\"name\":" + json_string(s.name) + ",\"store\":" + json_string(s.store) +
           ",\"policy\":" + json_string(s.policy) + ",\"backlog\":" + std::to_string(s.backlog) +
           ",\"missed\":" + std::to_string(s.missed) + ",\"closed\":" + yes_no(s.closed) + "}";
  });
  return "{\"task_groups\":" + groups + ",\"channels\":" + chans + ",\"stores\":" + store_list +
         ",\"subscribers\":" + subs + "}";
}

}  // namespace custody
