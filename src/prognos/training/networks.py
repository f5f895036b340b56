"""RUL networks. Each maps a window (batch, window, n_features) to RUL / cap (batch,).

Add a network by decorating its class with :func:`register`; ``prognos train --model NAME`` then
offers it, and the conformance tests run over every registered name.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["NETWORKS", "Cnn", "Ensemble", "Gru", "LstmReference", "Tcn", "build_network", "register"]

NETWORKS: dict[str, type[nn.Module]] = {}


def register(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def deco(cls: type[nn.Module]) -> type[nn.Module]:
        NETWORKS[name] = cls
        return cls

    return deco


def build_network(name: str, n_features: int, window: int, **params: float) -> nn.Module:
    if name not in NETWORKS:
        from prognos.errors import ConfigError

        raise ConfigError(f"unknown model {name!r}: expected one of {', '.join(sorted(NETWORKS))}")
    try:
        return NETWORKS[name](n_features, window, **params)
    except TypeError as exc:  # an unknown or mistyped hyper-parameter in model_params
        from prognos.errors import ConfigError

        raise ConfigError(f"model_params.{name}: {exc}") from None


@register("lstm")
class LstmReference(nn.Module):
    """The planning documents' network: LSTM(64, sequences) → dropout → LSTM(64) → dropout →
    dense 32 relu → dropout → dense 1."""

    def __init__(self, n_features: int, window: int, hidden: int = 64, dropout: float = 0.2) -> None:
        super().__init__()
        hidden = int(hidden)
        self.lstm1 = nn.LSTM(n_features, hidden, batch_first=True)
        self.lstm2 = nn.LSTM(hidden, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.dense = nn.Linear(hidden, 32)
        self.out = nn.Linear(32, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm1(x)
        h = self.drop(h)
        h, _ = self.lstm2(h)
        h = self.drop(h[:, -1, :])
        h = self.drop(torch.relu(self.dense(h)))
        return self.out(h).squeeze(-1)


@register("cnn")
class Cnn(nn.Module):
    """1-D convolutions along time, then a dense head over the flattened feature map (keeps where in
    the window a pattern sits: the most recent cycles matter most)."""

    def __init__(
        self, n_features: int, window: int, channels: int = 32, kernel: int = 5, layers: int = 3,
        hidden: int = 64, dropout: float = 0.2,
    ) -> None:
        super().__init__()
        convs: list[nn.Module] = []
        c_in = n_features
        for _ in range(int(layers)):
            convs += [nn.Conv1d(c_in, int(channels), int(kernel), padding=int(kernel) // 2), nn.ReLU()]
            c_in = int(channels)
        self.convs = nn.Sequential(*convs)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(int(channels) * window, int(hidden)), nn.ReLU(),
            nn.Linear(int(hidden), 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(x.transpose(1, 2))).squeeze(-1)


class _CausalBlock(nn.Module):
    def __init__(self, channels: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv1 = nn.Conv1d(channels, channels, kernel, dilation=dilation)
        self.conv2 = nn.Conv1d(channels, channels, kernel, dilation=dilation)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv1(nn.functional.pad(x, (self.pad, 0))))
        h = self.drop(h)
        h = self.conv2(nn.functional.pad(h, (self.pad, 0)))
        return torch.relu(x + h)


@register("tcn")
class Tcn(nn.Module):
    """Temporal convolutional network: causal dilated residual blocks (receptive field covers the
    window), read out at the newest cycle. Few weights, so it overfits less than a flat head."""

    def __init__(self, n_features: int, window: int, channels: int = 32, kernel: int = 3, blocks: int = 4,
                 hidden: int = 32, dropout: float = 0.1) -> None:
        super().__init__()
        self.inp = nn.Conv1d(n_features, int(channels), 1)
        self.blocks = nn.Sequential(
            *[_CausalBlock(int(channels), int(kernel), 2**i, dropout) for i in range(int(blocks))]
        )
        self.head = nn.Sequential(nn.Linear(int(channels), int(hidden)), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(int(hidden), 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(self.inp(x.transpose(1, 2)))
        return self.head(h[:, :, -1]).squeeze(-1)


@register("gru")
class Gru(nn.Module):
    """A single GRU layer read out at the newest cycle; a lighter recurrent alternative."""

    def __init__(self, n_features: int, window: int, hidden: int = 48, dropout: float = 0.2) -> None:
        super().__init__()
        self.gru = nn.GRU(n_features, int(hidden), batch_first=True)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(int(hidden), 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(x)
        return self.head(h[:, -1, :]).squeeze(-1)


class Ensemble(nn.Module):
    """Mean of member networks, scaled to cycles and clipped to [0, cap]: what the bundle serves."""

    def __init__(self, members: list[nn.Module], cap: float) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.cap = float(cap)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.stack([m(x) for m in self.members], dim=0).mean(0) * self.cap
        return torch.clamp(y, 0.0, self.cap)
