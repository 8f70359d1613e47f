"""The built-in tabular trainer's model (``TabularNet``) and its artifact format.

Model: numeric features standardised with train-split mean/std (NaN -> 0 afterwards, plus one
missing indicator per numeric feature), one embedding per categorical feature (dimension
``min(16, (vocab + 1) // 2 + 1)``, index 0 = missing/unknown), an MLP (ReLU, optional dropout)
and a head: 1 logit (binary), C logits (multiclass) or 1 value (regression, trained on the
standardised target).

Artifact (``driftd-tabular/1``), byte-stable for equal weights and config: ``MAGIC``, the u64
LE length of a UTF-8 JSON header (sorted keys, no whitespace: ``config`` and, per tensor in
sorted name order, name/dtype/shape/offset/nbytes), then the raw little-endian bytes of every
tensor in that order. Nothing in it depends on time, paths, pickle or the torch version's
``torch.save`` layout, and loading it executes no code.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

FORMAT = "driftd-tabular/1"
MAGIC = b"DRIFTD-TABULAR\x00v1\n"
_DTYPES = {torch.float32: "<f4", torch.float64: "<f8", torch.int64: "<i8", torch.int32: "<i4"}


def embedding_dim(vocab_size: int) -> int:
    """Embedding width for a vocabulary: grows with it, capped at 16."""
    return min(16, (vocab_size + 1) // 2 + 1)


class TabularNet(nn.Module):
    """Standardisation + missing indicators + embeddings -> MLP -> head; ``config`` rebuilds it."""

    num_mean: torch.Tensor
    num_std: torch.Tensor
    target_mean: torch.Tensor
    target_std: torch.Tensor

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        n_num = len(config["numeric_names"])
        self.register_buffer("num_mean", torch.zeros(n_num))
        self.register_buffer("num_std", torch.ones(n_num))
        self.register_buffer("target_mean", torch.zeros(1))
        self.register_buffer("target_std", torch.ones(1))
        sizes = [len(v) for v in config["vocabularies"]]
        self.embeddings = nn.ModuleList(nn.Embedding(v + 1, embedding_dim(v)) for v in sizes)
        width = 2 * n_num + sum(embedding_dim(v) for v in sizes)
        layers: list[nn.Module] = []
        for h in config["hidden"]:
            layers += [nn.Linear(width, int(h)), nn.ReLU()]
            if config["dropout"] > 0:
                layers.append(nn.Dropout(float(config["dropout"])))
            width = int(h)
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(width, int(config["n_outputs"]))

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor) -> torch.Tensor:
        """Raw outputs: logits, or the standardised regression value."""
        missing = torch.isnan(numeric)
        z = torch.where(missing, 0.0, (numeric - self.num_mean) / self.num_std)
        parts = [z, missing.to(z.dtype)]
        parts += [emb(categorical[:, j]) for j, emb in enumerate(self.embeddings)]
        out: torch.Tensor = self.head(self.mlp(torch.cat(parts, dim=1)))
        return out


def save_model(net: TabularNet, path: Path) -> Path:
    """Write the ``driftd-tabular/1`` artifact atomically (see the module docstring)."""
    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    entries, blobs, offset = [], [], 0
    for name in sorted(state):
        t = state[name]
        blob = t.numpy().astype(_DTYPES[t.dtype], copy=False).tobytes()
        entries.append(
            {
                "name": name,
                "dtype": _DTYPES[t.dtype],
                "shape": list(t.shape),
                "offset": offset,
                "nbytes": len(blob),
            }
        )
        blobs.append(blob)
        offset += len(blob)
    header = json.dumps(
        {"format": FORMAT, "config": net.config, "tensors": entries},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
        allow_nan=False,
    ).encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as f:
        f.write(MAGIC + struct.pack("<Q", len(header)) + header)
        for blob in blobs:
            f.write(blob)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def load_model(path: Path | str) -> tuple[TabularNet, dict[str, Any]]:
    """Rebuild the model (eval mode, CPU) and its config from an artifact file."""
    data = Path(path).read_bytes()
    if not data.startswith(MAGIC):
        raise ValueError(f"{path} is not a {FORMAT} artifact")
    (size,) = struct.unpack_from("<Q", data, len(MAGIC))
    start = len(MAGIC) + 8
    header = json.loads(data[start : start + size])
    body = memoryview(data)[start + size :]
    state = {
        e["name"]: torch.from_numpy(
            np.frombuffer(body[e["offset"] : e["offset"] + e["nbytes"]], e["dtype"])
            .reshape(e["shape"])
            .astype(e["dtype"][1:])
        )
        for e in header["tensors"]
    }
    net = TabularNet(header["config"])
    net.load_state_dict(state, strict=True)
    net.eval()
    return net, net.config
