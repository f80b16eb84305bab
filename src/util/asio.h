// The one way to include Asio. Boost 1.74's awaitable.hpp uses std::exchange without
// including <utility>; including it first keeps C++20 builds working everywhere.
#pragma once

#include <utility>

#include <boost/asio.hpp>

namespace rollout {
namespace asio = boost::asio;
}
