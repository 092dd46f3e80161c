"""`hf-recsys export-onnx`: the scoring path of a model as an ONNX graph (history tokens -> top-k tokens, scores).

    hf-recsys export-onnx --model runs/demo --output model.onnx --k 10

Inputs `input_ids` int64 (batch, length) item tokens (0 = padding) and, for a user-conditioned model,
`user_ids` int64 (batch,); outputs `item_ids` int64 (batch, k) and `scores` float32 (batch, k). Padding and
(by default) the history's own items are excluded inside the graph. Needs the `onnx` package (the `export`
extra); run the file with onnxruntime. docs/export.md has an example.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from transformers import HfArgumentParser

PROG = "hf-recsys export-onnx"


@dataclass
class ExportOnnxArguments:
    """Which model, which file, how many results."""

    model: str = field(metadata={"help": "Run folder or Hub repo id."})
    output: str = field(metadata={"help": "The .onnx file to write."})
    k: int = field(default=10, metadata={"help": "Items returned per history (fixed in the graph)."})
    exclude_seen: bool | None = field(
        default=None,
        metadata={"help": "Never return an item of the input history. Default: the model's (the data's) setting."},
    )
    overwrite: bool = field(default=False, metadata={"help": "Replace an existing output file."})
    revision: str | None = field(default=None, metadata={"help": "Hub revision (branch, tag or commit)."})


def parser() -> HfArgumentParser:
    """The options of `hf-recsys export-onnx`."""
    return HfArgumentParser(ExportOnnxArguments, prog=PROG)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, export, print where the graph went and what it takes."""
    (args,) = parser().parse_args_into_dataclasses(args=argv)
    try:
        import onnx  # noqa: F401  (torch.onnx.export needs it)
    except ImportError:
        raise RuntimeError("export-onnx needs the onnx package: pip install 'hf-recsys[export]'") from None
    from ..export import export_onnx

    path = export_onnx(args.model, args.output, k=args.k, exclude_seen=args.exclude_seen, overwrite=args.overwrite)
    print(json.dumps({"output": str(path), "k": args.k, "exclude_seen": args.exclude_seen}, indent=2))
    return 0
