"""CDI device names read from spec files, as nvidia-ctk and amd-ctk write them."""

from __future__ import annotations

import json
from pathlib import Path

from ozwald_agent.hardware.cdi import cdi_devices_in, parse_cdi_spec

# The shape `nvidia-ctk cdi generate` writes: keys sorted, so each device's `name` comes
# after its `containerEdits`, and nested lists at the same indent as their key.
NVIDIA_CTK_YAML = """\
---
cdiVersion: 0.5.0
containerEdits:
  deviceNodes:
  - path: /dev/nvidia-modeset
  - path: /dev/nvidiactl
  env:
  - NVIDIA_VISIBLE_DEVICES=void
devices:
- containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
  name: "0"
- containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
  name: GPU-4f5b5c1e-8d2a-4b7e-9c3f-2a1d6e8b7c90
- containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
  name: all  # every GPU
kind: nvidia.com/gpu
"""

NAME_FIRST_YAML = """\
cdiVersion: "0.6.0"
kind: 'amd.com/gpu'
devices:
  - name: gpu0
    containerEdits:
      deviceNodes:
        - path: /dev/dri/renderD128
        - path: /dev/kfd
  - name: gpu1
    containerEdits:
      env:
        - name: NOT_A_DEVICE
"""


def test_nvidia_ctk_yaml_gives_every_device() -> None:
    assert parse_cdi_spec(NVIDIA_CTK_YAML, is_json=False) == (
        "nvidia.com/gpu",
        ["0", "GPU-4f5b5c1e-8d2a-4b7e-9c3f-2a1d6e8b7c90", "all"],
    )


def test_indented_yaml_with_names_first_gives_every_device() -> None:
    assert parse_cdi_spec(NAME_FIRST_YAML, is_json=False) == ("amd.com/gpu", ["gpu0", "gpu1"])


def test_json_specs_are_read() -> None:
    spec = {
        "cdiVersion": "0.5.0",
        "kind": "nvidia.com/gpu",
        "devices": [{"name": "0", "containerEdits": {}}, {"name": "1"}, {"nameless": True}],
    }

    assert parse_cdi_spec(json.dumps(spec), is_json=True) == ("nvidia.com/gpu", ["0", "1"])


def test_unreadable_specs_give_nothing() -> None:
    assert parse_cdi_spec("{not json", is_json=True) == ("", [])
    assert parse_cdi_spec('["a list"]', is_json=True) == ("", [])
    assert parse_cdi_spec("devices:\n- name: x\n", is_json=False) == ("", ["x"])


def test_spec_dirs_give_qualified_names_and_skip_what_is_not_a_spec(tmp_path: Path) -> None:
    etc, run = tmp_path / "etc-cdi", tmp_path / "run-cdi"
    etc.mkdir()
    run.mkdir()
    (etc / "nvidia.yaml").write_text(NVIDIA_CTK_YAML)
    (etc / "README.txt").write_text("kind: nvidia.com/gpu\ndevices:\n- name: fake\n")
    (run / "amd.json").write_text(json.dumps({"kind": "amd.com/gpu", "devices": [{"name": "0"}]}))
    (run / "kindless.yml").write_text("devices:\n- name: orphan\n")

    devices = cdi_devices_in([str(etc), str(run), str(tmp_path / "absent")])

    assert devices == [
        "nvidia.com/gpu=0",
        "nvidia.com/gpu=GPU-4f5b5c1e-8d2a-4b7e-9c3f-2a1d6e8b7c90",
        "nvidia.com/gpu=all",
        "amd.com/gpu=0",
    ]
