#include "daemon/runner/look_clock.h"

#include <algorithm>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

namespace ptbuild {

LookClock::LookClock(boost::asio::io_context& io) : io_(io), timer_(io) {}

uint64_t LookClock::add(Look look, Clock::time_point when) {
  uint64_t id = next_id_++;
  lookers_.emplace(id, Looker{std::move(look), when});
  arm();
  return id;
}

void LookClock::look_at(uint64_t id, Clock::time_point when) {
  auto it = lookers_.find(id);
  if (it == lookers_.end()) return;
  it->second.due = when;
  arm();
}

void LookClock::remove(uint64_t id) {
  lookers_.erase(id);
}

// The timer waits for the earliest look; while a tick's turns run, the last turn arms it.
void LookClock::arm() {
  if (in_turns_ || lookers_.empty()) return;
  Clock::time_point earliest = Clock::time_point::max();
  for (const auto& [id, l] : lookers_) earliest = std::min(earliest, l.due);
  if (armed_for_ == earliest) return;
  armed_for_ = earliest;
  timer_.expires_at(earliest);  // cancels the wait pending for another time
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

void LookClock::tick() {
  armed_for_.reset();
  ++wakeups_;
  Clock::time_point until = Clock::now() + kTogether;
  std::vector<std::pair<Clock::time_point, uint64_t>> due;
  for (const auto& [id, l] : lookers_)
    if (l.due <= until) due.emplace_back(l.due, id);
  // Latest first: take_turn() takes from the back, so the most overdue is looked at first.
  std::sort(due.begin(), due.end(), std::greater<>());
  turns_.clear();
  for (const auto& [when, id] : due) turns_.push_back(id);
  in_turns_ = true;
  take_turn();
}

void LookClock::take_turn() {
  while (!turns_.empty()) {
    uint64_t id = turns_.back();
    turns_.pop_back();
    auto it = lookers_.find(id);
    if (it == lookers_.end()) continue;  // gone since the tick
    std::optional<Clock::time_point> next = it->second.look();
    // The look may have added or removed lookers: find it again.
    if (it = lookers_.find(id); it != lookers_.end()) {
      if (next)
        it->second.due = *next;
      else
        lookers_.erase(it);
    }
    if (!turns_.empty()) {
      boost::asio::post(io_, [this] { take_turn(); });
      return;
    }
  }
  in_turns_ = false;
  arm();
}

}  // namespace ptbuild
