// A simulated fleet that outlives its process (apply --simulate, then resume): the server's
// request log under a header that names the fleet file and when the fleet was made. Read
// back, its applied deploy_updates are applied again at their simulated times, which gives
// the same fleet (each device's draws depend on the seed, the device and its updates only).
// Pure: text in, values out.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sim/fleet.h"
#include "upswift/deploy.h"

namespace rollout::sim {

struct JournalHeader {
  std::string fleet_path;
  std::string fleet_sha256;
  SimTime created{0};  // the fleet's start: offline devices come back counted from here
  // How many times faster than the wall clock the run's time went when it started: a later
  // process of the run goes on at it unless told otherwise (1 in records written before).
  double time_scale = 1.0;
};

// One JSON line; the server's request log goes on after it.
std::string journal_header_line(const JournalHeader& header);

struct JournalEntry {
  SimTime at{0};
  upswift::DeployRequest request;
};

struct Journal {
  JournalHeader header;
  std::vector<JournalEntry> applied;  // in the order the fleet applied them
  SimTime last{0};                    // the latest simulated time of any request
};

// nullopt and why when the text is not a journal; a last line cut short (the process was
// killed while writing it) is left out: its request was never answered.
std::optional<Journal> read_journal(std::string_view text, std::string* why);

// Applies the journal's deploy_updates to a fleet made at header.created.
void replay(Fleet& fleet, const Journal& journal);

}  // namespace rollout::sim
