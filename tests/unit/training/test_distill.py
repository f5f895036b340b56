import numpy as np
import pytest

torch = pytest.importorskip("torch")

from prognos.data.synthetic import synthetic_fleet  # noqa: E402
from prognos.features import FeaturePipeline  # noqa: E402
from prognos.training.config import TrainConfig  # noqa: E402
from prognos.training.distill import distill, student_windows  # noqa: E402
from prognos.training.export import torch_predict  # noqa: E402
from prognos.training.networks import Ensemble, build_network  # noqa: E402
from prognos.training.trainer import EpochReport, epoch_logger  # noqa: E402


@pytest.fixture(scope="module")
def fleet_windows():
    fleet = synthetic_fleet(6, seed=4, min_life=50, max_life=70)
    p = FeaturePipeline(window=10).fit(fleet)
    return fleet, p, p.training_windows(fleet)


def test_student_windows_add_late_starts_and_noise(fleet_windows):
    fleet, p, w = fleet_windows
    sw = student_windows(p, fleet, w, seed=0, late_starts=1, noise=0.05)
    x, ids = sw.x, sw.engine_ids
    assert x.shape[1:] == w.x.shape[1:] and x.dtype == np.float32 and len(ids) == len(x)
    assert len(w) * 2 < len(x) < len(w) * 3  # all windows, their noisy copies, shorter late-start histories
    np.testing.assert_array_equal(x[: len(w)], w.x)
    plain = student_windows(p, fleet, w, seed=0, late_starts=0, noise=0.0)
    np.testing.assert_array_equal(plain.x, w.x)


def test_student_learns_the_teacher(fleet_windows):
    """A student trained for some epochs agrees with its teacher far better than an untrained one."""
    fleet, p, w = fleet_windows
    torch.manual_seed(1)
    teacher = Ensemble([build_network("tcn", p.n_features, p.window, channels=8)], 125.0).eval()
    with torch.no_grad():  # a teacher with a clear, learnable signal: RUL falls with the newest features
        teacher.members[0].head[-1].bias.fill_(0.5)
    cfg = TrainConfig(window=10, epochs=15, student_epochs=15, threads=1, lr=5e-3,
                      student_params={"channels": 8})
    seen: list[EpochReport] = []
    sw = student_windows(p, fleet, w, cfg.seed)
    res = distill(sw, torch_predict(teacher, sw.x), p.n_features, p.window, cfg, seen.append)
    assert [r.epoch for r in seen] == list(range(1, 16)) and all(r.stage == "student" for r in seen)
    t = torch_predict(teacher, w.x)
    untrained = Ensemble([build_network("tcn", p.n_features, p.window, channels=8)], 125.0).eval()
    gap_trained = np.sqrt(np.mean((torch_predict(res.model, w.x) - t) ** 2))
    gap_untrained = np.sqrt(np.mean((torch_predict(untrained, w.x) - t) ** 2))
    assert gap_trained < 0.5 * gap_untrained
    assert res.agreement_rmse == pytest.approx(min(r.val_rmse for r in seen))


def test_the_student_trained_by_two_processes_equals_the_one_trained_by_one(fleet_windows):
    """threads=2 splits every batch between this process and a helper (gloo all-reduce of the two
    halves' gradients); threads=1 does both halves here. Same network, to the bit."""
    fleet, p, w = fleet_windows
    torch.manual_seed(2)
    teacher = Ensemble([build_network("tcn", p.n_features, p.window, channels=8)], 125.0).eval()
    cfg = TrainConfig(window=10, epochs=3, student_epochs=3, threads=1, batch_size=50, student_params={"channels": 8})
    sw = student_windows(p, fleet, w, cfg.seed)
    labels = torch_predict(teacher, sw.x)
    one = distill(sw, labels, p.n_features, p.window, cfg)
    seen: list[EpochReport] = []
    two = distill(sw, labels, p.n_features, p.window, cfg.model_copy(update={"threads": 2}), seen.append)
    assert len(sw.x) % 50 != 0  # a short last batch, split unevenly, is part of the check
    assert (one.agreement_rmse, one.best_epoch) == (two.agreement_rmse, two.best_epoch)
    for (ka, ta), (kb, tb) in zip(one.model.state_dict().items(), two.model.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(ta, tb), ka
    assert [r.epoch for r in seen] == [1, 2, 3]


def test_epoch_logger_writes_one_line_per_epoch():
    lines: list[str] = []
    log = epoch_logger(lines.append)
    log(EpochReport(3, 10, 7, 60, 0.0123, 14.2, 13.9))
    log(EpochReport(1, 1, 2, 30, 0.001, 1.5, 1.4, stage="student"))
    assert lines == ["member 3/10 epoch 7/60: loss 0.0123  val RMSE 14.20 (best 13.90)",
                     "student epoch 2/30: loss 0.0010  RMSE vs teacher 1.50 (best 1.40)"]
