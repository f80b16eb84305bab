"""The layers stay as drawn: every #include in src/ names a header of its own folder or of a
library its folder's target links (directly or through others), as src/CMakeLists.txt
declares them; and each third-party library is included in the one folder that owns it.

    check_layers.py SOURCE_DIR

Prints each violation as FILE:LINE: what, and exits 1 if there is any."""
import re
import sys
from pathlib import Path

# The third-party headers, the target that brings each, and where it may be included. A
# folder may include a library only when its own target links it (checked below); Beast and
# OpenSSL are narrower still: one file or folder each.
THIRD_PARTY = {
    "yaml-cpp/": "yaml-cpp",
    "curl/": "CURL::libcurl",
    "sqlite3.h": "SQLite::SQLite3",
    "libpq-fe.h": "PostgreSQL::PostgreSQL",
    "openssl/": "OpenSSL::Crypto",
    "nlohmann/": "nlohmann_json::nlohmann_json",
    "simdjson.h": "simdjson::simdjson",
    "CLI/": "CLI11::CLI11",
}
ONLY_IN = {"boost/beast": {"sim"}, "sqlite3.h": {"store"}, "libpq-fe.h": {"store"},
           "simdjson.h": {"upswift"}}


def targets(cmake_text):
    """folder -> (its target, every target it links, directly)."""
    folder_of = {}
    for m in re.finditer(r"add_library\((rollout_(\w+))\s", cmake_text):
        folder_of[m.group(1)] = m.group(2)
    folder_of["rollout"] = "cli"
    links = {}
    for m in re.finditer(r"target_link_libraries\((\w+)\s+(.*?)\)", cmake_text, re.S):
        words = [w for w in m.group(2).split() if w not in ("PUBLIC", "PRIVATE", "INTERFACE")]
        links.setdefault(m.group(1), set()).update(words)
    return folder_of, links


def closure(target, links):
    seen, todo = set(), [target]
    while todo:
        t = todo.pop()
        for dep in links.get(t, ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def violations(files, cmake_text):
    """files: {relative path under src/: text}. Returns ["path:line: why", ...]."""
    folder_of, links = targets(cmake_text)
    target_of = {folder: target for target, folder in folder_of.items()}
    out = []
    for path, text in sorted(files.items()):
        folder = path.split("/")[0]
        target = target_of.get(folder)
        if target is None:
            out.append(f"{path}:1: folder '{folder}' has no library in src/CMakeLists.txt")
            continue
        reach = closure(target, links)
        reach_folders = {folder_of[t] for t in reach if t in folder_of} | {folder}
        for n, line in enumerate(text.splitlines(), 1):
            m = re.match(r'\s*#\s*include\s*([<"])([^>"]+)[>"]', line)
            if not m:
                continue
            name = m.group(2)
            if m.group(1) == '"':
                used = name.split("/")[0] if "/" in name else folder
                if used not in reach_folders:
                    out.append(f"{path}:{n}: {folder}/ includes \"{name}\", but {target} does not "
                               f"link rollout_{used} (it may use: {', '.join(sorted(reach_folders))})")
                continue
            for prefix, lib in THIRD_PARTY.items():
                if name.startswith(prefix) and lib not in links.get(target, ()):
                    out.append(f"{path}:{n}: {folder}/ includes <{name}>, but only a folder "
                               f"whose target links {lib} may")
            for prefix, allowed in ONLY_IN.items():
                if name.startswith(prefix) and folder not in allowed:
                    out.append(f"{path}:{n}: <{name}> belongs in {', '.join(sorted(allowed))}/ only")
    return out


def self_test(cmake_text):
    """The check itself must catch what it is for."""
    bad = {
        "util/x.cc": '#include "engine/engine.h"\n',
        "plan/y.cc": "#include <sqlite3.h>\n",
        "engine/z.cc": "#include <boost/beast/http.hpp>\n",
        "cli/w.cc": "#include <libpq-fe.h>\n",
        "client/v.cc": "#include <simdjson.h>\n",
    }
    found = violations(bad, cmake_text)
    # y.cc twice: its target does not link SQLite, and sqlite3 belongs in store/ anyway.
    assert len(found) == 8, found
    assert violations({"engine/ok.cc": '#include "plan/model.h"\n#include "engine/gate.h"\n'},
                      cmake_text) == []


def main():
    src = Path(sys.argv[1]) / "src"
    cmake_text = (src / "CMakeLists.txt").read_text()
    self_test(cmake_text)
    files = {str(p.relative_to(src)): p.read_text()
             for p in src.rglob("*") if p.suffix in (".cc", ".h", ".in")}
    found = violations(files, cmake_text)
    for v in found:
        print(v)
    print(f"{len(files)} files, {len(found)} layer violation(s)")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
