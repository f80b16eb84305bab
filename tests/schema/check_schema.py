#!/usr/bin/python3
"""The JSON Schemas agree with the loaders on the example and malformed plans and fleets.

Every plan in plans/ must be valid under schema/plan.schema.json; every malformed plan
in tests/plans/invalid/ marked "# schema: rejects" must be rejected by it (or be
unreadable YAML), and those marked "accepts" hold errors beyond what a schema can say.
Every fleet in examples/fleets/ and tests/fleets/ must be valid under
schema/fleet.schema.json, and a fleet with a key the loader does not know is rejected.
"""
import json
import pathlib
import sys

import jsonschema
import yaml

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".")
schema = json.loads((root / "schema/plan.schema.json").read_text())
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
failures = []
checked = 0

for path in sorted((root / "plans").glob("*.yaml")):
    errors = list(validator.iter_errors(yaml.safe_load(path.read_text())))
    checked += 1
    if errors:
        failures.append(f"{path}: valid plan rejected by the schema: {errors[0].message}")

for path in sorted((root / "tests/plans/invalid").glob("*.yaml")):
    raw = path.read_bytes()
    marker = [l for l in raw.decode("utf-8", "replace").splitlines() if l.startswith("# schema: ")]
    if not marker:
        failures.append(f"{path}: no '# schema:' line")
        continue
    expect_reject = marker[0].startswith("# schema: rejects")
    try:
        document = yaml.safe_load(raw.decode("utf-8"))
        rejected = bool(list(validator.iter_errors(document)))
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        rejected = True
    checked += 1
    if rejected != expect_reject:
        failures.append(f"{path}: schema {'accepted' if not rejected else 'rejected'} it, "
                        f"the file says {marker[0]!r}")

fleet_schema = json.loads((root / "schema/fleet.schema.json").read_text())
jsonschema.Draft7Validator.check_schema(fleet_schema)
fleets = jsonschema.Draft7Validator(fleet_schema)
for path in sorted([*(root / "examples/fleets").glob("*.yaml"), *(root / "tests/fleets").glob("*.yaml")]):
    errors = list(fleets.iter_errors(yaml.safe_load(path.read_text())))
    checked += 1
    if errors:
        failures.append(f"{path}: valid fleet rejected by the schema: {errors[0].message} at "
                        f"{'/'.join(str(p) for p in errors[0].absolute_path)}")
for bad in ({"projects": [{"name": "Demo", "groups": [{"name": "G", "devices": 2, "tagz": []}]}]},
            {"projects": [{"name": "Demo"}], "updates": {"failure_rate": 0.5}},
            {"projects": [{"name": "Demo", "devices": [{"name": "no group"}]}]}):
    checked += 1
    if not list(fleets.iter_errors(bad)):
        failures.append(f"fleet schema accepted a malformed fleet: {bad}")

for failure in failures:
    print(failure)
print(f"{checked - len(failures)} passed, {len(failures)} failed")
sys.exit(1 if failures else 0)
