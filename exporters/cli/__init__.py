"""The `rnnx` command line (click): one module per command, all on one group.

Every command turns an `RnnxError` into one line on stderr and exit code 1
(`base.one_line_errors`). Command modules import only `base`, never this
package's namespace, so each imports alone.
"""

from .base import cli, one_line_errors  # noqa: F401
from .bench import bench_command
from .export import export_command, inspect_command, pack_command
from .layers import layers_command
from .quantize import quantize_command

for _command in (bench_command, export_command, inspect_command, layers_command, pack_command, quantize_command):
    cli.add_command(_command)
