"""Which layer of the source model each weight-reading ONNX node belongs to.

rnnx exports name weights after their Keras layer (`dense_4_kernel`,
`s0_gru_0_R`: segment 0, layer `gru_0`, recurrent weights), so a layer is
the set of nodes that read the weights of one Keras layer. For files from
elsewhere the weight's own name is the layer. Mixed precision keeps whole
layers in float: every node of a kept layer is excluded from quantization.
"""

from __future__ import annotations

import re

from .graph import _elements

_SEGMENT = re.compile(r"^s\d+_")
_SUFFIX = re.compile(r"_(rec_kernel|kernel|rec_bias|bias|table|depthwise_kernel|pointwise_kernel|gamma|beta|"
                     r"moving_mean|moving_variance|W|R|B|P|Wt|Rt|WRt|Rt_zr|Rt_h|bx|bh)$")
MIN_WEIGHT = 16  # elements: smaller initializers are shapes, axes and scalars


def layer_of(weight: str) -> str:
    """The layer a weight initializer belongs to: `s0_gru_0_R` -> `gru_0`, `dense_4_kernel` -> `dense_4`."""
    name = _SEGMENT.sub("", weight)
    stripped = _SUFFIX.sub("", name)
    return stripped or weight


def layers(model) -> dict:
    """{layer: [names of the main-graph nodes that read its weights]}, layers in graph order."""
    g = model.graph
    weights = {i.name for i in g.initializer if i.data_type in (1, 10, 11) and _elements(i) > MIN_WEIGHT}
    out: dict = {}
    for node in g.node:
        for name in node.input:
            if name in weights:
                out.setdefault(layer_of(name), [])
                if node.name not in out[layer_of(name)]:
                    out[layer_of(name)].append(node.name)
    return out


def name_nodes(model) -> int:
    """Give every unnamed node of the main graph a unique name (exclusion lists need names)."""
    taken = {n.name for n in model.graph.node if n.name}
    count = 0
    for i, node in enumerate(model.graph.node):
        if not node.name:
            k = i
            while f"node_{k}" in taken:
                k += 1
            node.name = f"node_{k}"
            taken.add(node.name)
            count += 1
    return count
