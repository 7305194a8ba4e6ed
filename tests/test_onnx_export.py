"""ONNX export: the teacher and one student step pass onnx.checker and match PyTorch in onnxruntime."""

from __future__ import annotations

import onnx
import pytest
import torch

from neurokd.errors import NeurokdError
from neurokd.exporters.onnx import check_onnx, export_student_step, export_teacher
from neurokd.models import build_student, build_teacher


def test_teacher_onnx_passes_checker_and_matches_pytorch(tmp_path):
    torch.manual_seed(0)
    teacher = build_teacher("mlp", (64,), 10)
    x = torch.rand(5, 64)
    report = export_teacher(teacher, tmp_path / "teacher.onnx", x)
    assert report["checker"] == "passed" and report["onnxruntime"]
    assert report["max_abs_diff"] < 1e-5
    graph = onnx.load(str(tmp_path / "teacher.onnx")).graph
    assert [i.name for i in graph.input] == ["x"]


def test_student_step_onnx_run_T_times_gives_student_logits(tmp_path):
    torch.manual_seed(1)
    student = build_student("mlp", (64,), 10, timesteps=6, beta=0.8, threshold=0.5)
    x = torch.rand(7, 64) * 2
    report = export_student_step(student, tmp_path / "student_step.onnx", x)
    assert report["checker"] == "passed" and report["onnxruntime"]
    assert report["state_inputs"] == ["v_lif1", "v_lif2"]
    # Spikes are thresholded exactly; logits may differ only by float summation order.
    assert report["max_abs_diff"] < 1e-5
    with torch.no_grad():
        _, spikes, _ = student.run(x)
    assert 0 < float(spikes["lif1"].mean()) < 1  # the check exercised real spiking


def test_resnet_teacher_and_student_step_onnx_carry_the_residual_branches(tmp_path):
    """Identity and 1x1-conv shortcuts: both graphs must add them (a graph without them would
    differ from PyTorch far beyond 1e-5)."""
    torch.manual_seed(2)
    sizes = {"stem": 4, "channels": (4, 6), "kernel": 3}
    teacher = build_teacher("resnet1d", (3, 12), 5, **sizes).eval()
    student = build_student("resnet1d", (3, 12), 5, timesteps=4, threshold=0.5, **sizes).eval()
    x = torch.rand(6, 3, 12) * 2
    rt = export_teacher(teacher, tmp_path / "teacher.onnx", x)
    rs = export_student_step(student, tmp_path / "student_step.onnx", x)
    assert rt["max_abs_diff"] < 1e-5 and rs["max_abs_diff"] < 1e-5
    assert rs["state_inputs"] == [f"v_lif{i}" for i in range(1, 6)]
    with torch.no_grad():
        _, spikes, _ = student.run(x)
    assert all(0 < float(s.mean()) < 1 for s in spikes.values())


def test_soft_reset_student_step_onnx_subtracts_the_threshold(tmp_path):
    torch.manual_seed(3)
    student = build_student("mlp", (64,), 10, timesteps=6, beta=0.8, threshold=0.5, reset="subtract")
    x = torch.rand(7, 64) * 2
    report = export_student_step(student, tmp_path / "student_step.onnx", x)
    assert report["max_abs_diff"] < 1e-5
    hard = build_student("mlp", (64,), 10, timesteps=6, beta=0.8, threshold=0.5)
    hard.load_state_dict(student.state_dict())
    with torch.no_grad():
        assert not torch.equal(student(x), hard(x))      # the two resets differ on this input


def test_corrupt_onnx_file_is_refused_with_one_line(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(NeurokdError) as info:
        check_onnx(bad)
    message = str(info.value)
    assert "bad.onnx" in message and "\n" not in message
