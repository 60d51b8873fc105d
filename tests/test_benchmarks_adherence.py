"""The adherence benchmark runs end to end on the world's own clips (the oracle: the analyzer's ceiling) and writes
its JSON; a missing model folder is one line on stderr and exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kinetoscope.evaluate.adherence import direction_misses
from kinetoscope.world.vocab import is_held_out

REPO = Path(__file__).resolve().parents[1]
SCRIPT = [sys.executable, str(REPO / "benchmarks" / "adherence.py")]


def test_oracle_quick_scores_held_out_cases_near_one(tmp_path):
    out = tmp_path / "adherence.json"
    r = subprocess.run([*SCRIPT, "--oracle", "--quick", "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "| color |" in r.stdout
    res = json.loads(out.read_text())
    assert "--oracle --quick" in res["command"]
    cases, s = res["cases"], res["summary"]
    assert len(cases) == 6 and res["mix"]["falling"] == 2  # cases 0 and 3 fall
    for c in cases:
        t = c["truth"]
        assert is_held_out(t["color"], t["kind"], t["motion"]), t
        assert c["world_spec"]["allow_held_out"] and c["prompt"] and t["color"] in c["prompt"]
        assert t["falling"] == (c["index"] % 3 == 0)
    assert s["color"]["n"] == 6 and s["gravity"]["n"] == 2 and s["direction"]["n"] >= 3
    for key in ("color", "direction", "gravity", "one_object", "one_object_frames"):
        assert s[key]["rate"] >= 0.95, (key, s[key])
    assert all(bar["pass"] for bar in s["bars"].values())
    assert s["direction_misses"] == {"still": 0, "other way": 0, "no object": 0}
    assert res["timing"]["per_clip_s"] > 0


def test_direction_misses_say_why():
    def row(hit, dominant, way):
        return {"direction": hit, "seen": {"dominant": dominant, "objects": [{"direction": way}]}}

    rows = [row(True, 0, "left"), row(False, 0, "none"), row(False, 0, "none"), row(False, 0, "up"),
            row(False, None, None), row(None, 0, "none")]  # the last: direction not scored for it
    assert direction_misses(rows) == {"still": 2, "other way": 1, "no object": 1}


def test_missing_model_is_one_line_and_exit_2(tmp_path):
    out = tmp_path / "adherence.json"
    r = subprocess.run([*SCRIPT, "--model", str(tmp_path / "nope"), "--quick", "-o", str(out)],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "nope" in lines[0] and "Traceback" not in r.stderr, r.stderr
    assert not out.exists()


def test_the_words_probe_finds_the_bundled_model_reading_colors(tmp_path):
    """benchmarks/words.py: the flow loss is lower with a clip's own color than with another color (the bundled
    model reads colors); both swaps are reported at every noise level."""
    out = tmp_path / "words.json"
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "words.py"), "--cases", "8", "-o", str(out)],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    assert res["color"]["cases"] == 8 and res["direction"]["cases"] >= 1
    assert set(res["color"]["levels"]) == {"0.3", "0.5", "0.7", "0.9"}
    assert res["color"]["levels"]["0.5"]["gap"] > 0.01 and res["color"]["levels"]["0.5"]["true_wins"] >= 0.75


def test_the_coherence_probe_keeps_a_clip_denoised_from_little_noise(tmp_path):
    """benchmarks/coherence.py: a clip noised to t0 = 0.05 and denoised again changes from frame to frame about as much
    as the clip itself; every strength and the clips' own measures are reported."""
    out = tmp_path / "coherence.json"
    r = subprocess.run([sys.executable, str(REPO / "benchmarks" / "coherence.py"), "--cases", "2", "--strengths",
                        "0.05,1", "-o", str(out)], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr
    m = json.loads(out.read_text())["measures"]
    assert set(m) == {"real", "0.05", "1.0"}
    assert abs(m["0.05"]["latent_step"] / m["real"]["latent_step"] - 1) < 0.25
    assert all(v["pixel_step"] > 0 and 0 < v["detail"] < 4 for v in m.values())
    bad = subprocess.run([sys.executable, str(REPO / "benchmarks" / "coherence.py"), "--strengths", "0"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and "every strength in (0, 1]" in bad.stderr
