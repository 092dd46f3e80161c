"""The programs behind the `hf-recsys` subcommands (see `hf_recsys.cli`): one module per subcommand, each with a
`main(argv) -> int` that parses its own options with `HfArgumentParser`. No logic lives here that a user could
not reach from the package's Python API."""
