// What the engine sees of Upswift: three asynchronous calls. The real client (over
// libcurl) and the tests' fakes implement it; the engine never sees HTTP.
#pragma once

#include <fmt/format.h>

#include <functional>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "upswift/api.h"
#include "upswift/deploy.h"

namespace rollout::upswift {

enum class CallStatus {
  ok,
  refused,          // 400: Upswift said no, and why (error_message)
  unknown_outcome,  // deploy_update only: sent, but no answer; it may or may not have applied
  failed,           // could not be done within the retry budget; certainly not applied
};

std::string_view name(CallStatus s);

struct CallError {
  CallStatus status = CallStatus::ok;
  int http_status = 0;  // 0 when no answer came
  std::string message;  // for a person: Upswift's error_message quoted, or what went wrong
  int attempts = 0;
};

template <typename T>
struct Result {
  std::optional<T> value;
  CallError error;
  bool ok() const { return value.has_value(); }
};

struct Accepted {};  // deploy_update's {"message": "Success"}

class FleetApi {
 public:
  virtual ~FleetApi() = default;

  // Completion handlers are never called from inside the call that starts the operation.
  virtual void deploy_update(const DeployRequest& request,
                             std::function<void(Result<Accepted>)> done) = 0;
  virtual void devices_details(const DevicesQuery& query,
                               std::function<void(Result<DevicesPage>)> done) = 0;
  virtual void get_devices_state(const StatesQuery& query,
                                 std::function<void(Result<StatesPage>)> done) = 0;
  // A signal: reads under way or waiting to be retried end now, as failed ("cancelled");
  // so does every read asked for later. A deploy_update that is waiting (for the rate limit,
  // or to be tried again after it could not reach the server) ends now too, as failed and
  // certainly not applied. One on the wire is not touched: its outcome is waited for.
  virtual void cancel_reads() {}
};

// Every device of a project (or one group), 50 at a time: `page` gets each page as it
// arrives and nothing is kept, so a listing costs one page of memory whatever the fleet's
// size; then `done` gets how it ended (status ok, or the error that stopped it).
// A listing that pages by the last key of the previous page must move on: a server that
// answers the same page again, repeats a device, or says `more` forever would otherwise keep
// a run asking ~600 times a minute without end. nullopt while the listing is sound.
template <typename Key>
class PagingGuard {
 public:
  explicit PagingGuard(std::string endpoint) : endpoint_(std::move(endpoint)) {}

  template <typename Item, typename KeyOf>
  std::optional<std::string> check(const std::vector<Item>& page, KeyOf key_of) {
    return check(page, key_of,
                 [this, &key_of](const Item& item) { return first_time(key_of(item)); });
  }

  // The same, with the caller telling whether an item is listed for the first time (a
  // caller that knows the devices it looks for keeps no set of keys); `key_of` names it.
  template <typename Item, typename KeyOf, typename FirstTime>
  std::optional<std::string> check(const std::vector<Item>& page, KeyOf key_of,
                                   FirstTime is_first) {
    ++pages_;
    if (pages_ > kMaxPages) {
      return fmt::format(
          "{}: stopped listing after {} pages: the server keeps saying there is more", endpoint_,
          kMaxPages);
    }
    for (const Item& item : page) {
      if (!is_first(item)) {
        return fmt::format(
            "{}: page {} repeats a device already listed ({}): the server does not move on "
            "from the offset it was given; stopped listing",
            endpoint_, pages_, key_of(item));
      }
    }
    return std::nullopt;
  }

 private:
  // Keys that come in ascending order (device_ids, paged by the last one) are only
  // appended: no key can repeat one below it. The first key out of order turns the list
  // into a set, which every later key is checked against.
  bool first_time(const Key& key) {
    if (ascending_) {
      if (in_order_.empty() || in_order_.back() < key) {
        in_order_.push_back(key);
        return true;
      }
      ascending_ = false;
      seen_.reserve(in_order_.size() * 2);
      seen_.insert(in_order_.begin(), in_order_.end());
      in_order_ = {};
    }
    return seen_.insert(key).second;
  }

  // 200,000 pages of 50: ten million devices, far beyond any fleet an account holds.
  static constexpr std::size_t kMaxPages = 200000;
  std::string endpoint_;
  std::size_t pages_ = 0;
  bool ascending_ = true;
  std::vector<Key> in_order_;
  std::unordered_set<Key> seen_;
};

void for_each_device_page(FleetApi& api, const std::string& project,
                          const std::optional<std::string>& group,
                          std::function<void(std::vector<Device>& page)> page,
                          std::function<void(const CallError& ended)> done);

// The same listing, collected.
void list_all_devices(FleetApi& api, const std::string& project,
                      const std::optional<std::string>& group,
                      std::function<void(Result<std::vector<Device>>)> done);

}  // namespace rollout::upswift
