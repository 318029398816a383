// Where a build may run. Today: N local slots (max_parallel). The seam exists because a slot is
// not always a local process: builds can be placed on Nix remote builders, each with its own
// slots and system features (big-parallel, cuda), and the scheduler must not care.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ptbuild {

struct VariantRecord;

// A reserved place for one build, given back when destroyed (RAII).
class Slot {
 public:
  Slot() = default;
  Slot(std::string where, std::vector<std::string> extra_args, std::function<void()> release)
      : where_(std::move(where)), extra_args_(std::move(extra_args)), release_(std::move(release)) {}
  ~Slot() { reset(); }
  Slot(Slot&& o) noexcept { *this = std::move(o); }
  Slot& operator=(Slot&& o) noexcept {
    if (this != &o) {
      reset();
      where_ = std::move(o.where_);
      extra_args_ = std::move(o.extra_args_);
      release_ = std::exchange(o.release_, nullptr);
    }
    return *this;
  }
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;

  const std::string& where() const { return where_; }  // "local", or a builder's name
  // Arguments the backend adds to place the build there (e.g. Nix's --builders).
  const std::vector<std::string>& extra_args() const { return extra_args_; }
  explicit operator bool() const { return static_cast<bool>(release_); }
  void reset() {
    if (release_) std::exchange(release_, nullptr)();
  }

 private:
  std::string where_;
  std::vector<std::string> extra_args_;
  std::function<void()> release_;
};

class SlotPool {
 public:
  virtual ~SlotPool() = default;
  virtual std::optional<Slot> acquire(const VariantRecord& variant) = 0;
  virtual int in_use() const = 0;
  virtual int capacity() const = 0;
};

class LocalSlots : public SlotPool {
 public:
  explicit LocalSlots(int capacity) : capacity_(capacity) {}
  std::optional<Slot> acquire(const VariantRecord&) override {
    if (in_use_ >= capacity_) return std::nullopt;
    ++in_use_;
    return Slot("local", {}, [this] { --in_use_; });
  }
  int in_use() const override { return in_use_; }
  int capacity() const override { return capacity_; }
  void set_capacity(int capacity) { capacity_ = capacity; }  // on reload; running builds stay

 private:
  int capacity_;
  int in_use_ = 0;
};

}  // namespace ptbuild
