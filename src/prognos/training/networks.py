"""RUL networks. Each maps a window (batch, window, n_features) to RUL / cap (batch,).

Add a network by decorating its class with :func:`register`; ``prognos train --model NAME`` then
offers it, and the conformance tests run over every registered name.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["NETWORKS", "build_network", "register", "LstmReference", "Cnn", "Ensemble"]

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
    return NETWORKS[name](n_features, window, **params)


@register("lstm")
class LstmReference(nn.Module):
    """The planning documents' network: LSTM(64, sequences) → dropout → LSTM(64) → dropout →
    dense 32 relu → dropout → dense 1."""

    def __init__(self, n_features: int, window: int, hidden: int = 64, dropout: float = 0.2) -> None:
        super().__init__()
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


class Ensemble(nn.Module):
    """Mean of member networks, scaled to cycles and clipped to [0, cap]: what the bundle serves."""

    def __init__(self, members: list[nn.Module], cap: float) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.cap = float(cap)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.stack([m(x) for m in self.members], dim=0).mean(0) * self.cap
        return torch.clamp(y, 0.0, self.cap)
