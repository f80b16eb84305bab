#!/usr/bin/python3
"""The deploy_update page's own Python example, run unchanged against the simulator.

Only the host differs: https://api.upswift.io/v1/ becomes the simulator's loopback URL.
Usage: seed_example.py ROLLOUT_BINARY FLEET_FILE
"""
import json
import re
import subprocess
import sys

import requests

rollout, fleet = sys.argv[1], sys.argv[2]
sim = subprocess.Popen([rollout, "sim", "--fleet", fleet, "--listen", "127.0.0.1:0"],
                       stdout=subprocess.PIPE, text=True)
try:
    banner = sim.stdout.readline()
    base_url = re.search(r"(http://\S+/v1/)", banner).group(1)

    # --- the seed page's example, verbatim but for the URL ---
    #Upswift tokens
    user_token = "<user token>"
    json_content = {'user_token': user_token,
                    'metadata': {'comment': 'test webhook 1',
                                 'app': {'name': 'default_app', 'version': 'v1.1'}},
                    'flow_id': '73a7-1ft8',
                    'devices_filter': {'project': {'name': 'Demo'},
                                       'groups': [{'name': 'TestGroup1'}, {'name': 'TestGroup2'}],
                                       'filters': [{'type': 'specific_device',
                                                    'operand': 'is',
                                                    'value': 'd-4ec7-1be9'}]}
                    }
    call_request = requests.post(base_url + "deploy_update", json=json_content)
    call_response = json.loads(call_request.text)
    if call_request.status_code != 200:
        if call_request.status_code == 429:
            error = "API limit reached"
        else:
            error = call_response["error_message"]
        print(error)
    else:
        response_message = call_response["message"]
    # --- end of the seed's example ---

    assert call_request.status_code == 200, call_request.text
    assert call_response == {"message": "Success"}, call_response
    print(f"seed example: {call_request.status_code} {call_request.text}")

    # And the device got the update, as devices_details shows (a GET with a JSON body).
    details = requests.get(base_url + "devices_details",
                           json={"user_token": user_token, "project_name": "Demo",
                                 "group_name": "TestGroup1", "limit": 50})
    devices = {d["device_uuid"]: d for d in details.json()["message"]}
    updates = devices["d-4ec7-1be9"]["updates"]
    assert len(updates) == 1 and updates[0]["update_version"] == "v1.1", updates
    assert all(not d["updates"] for uuid, d in devices.items() if uuid != "d-4ec7-1be9")
    print("1 passed, 0 failed")
finally:
    sim.terminate()
    sim.wait(timeout=10)
