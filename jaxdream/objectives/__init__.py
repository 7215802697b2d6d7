"""Composable objectives: what the ascent maximises, as functions of the named activations.

Two modules, every name importable from here: ``jaxdream.objectives.algebra`` (the objective
types, their arithmetic and their stacking for a batch) and ``jaxdream.objectives.grammar``
(the text the command line reads, ``parse_objective``).

>>> (0.7 * channel("conv3", 56) + parse_objective("0.3*conv3:12")).name
'0.7*channel(conv3, 56) + 0.3*channel(conv3, 12)'
"""

from jaxdream.objectives.algebra import (
    MAX_OBJECTIVE_WEIGHT,
    MAX_TERMS,
    MIN_LARGEST_WEIGHT,
    Activations,
    Array,
    Channel,
    Layer,
    Logit,
    MeanSquare,
    Neuron,
    Objective,
    Shapes,
    Sum,
    broadcast_objective,
    channel,
    layer,
    logit,
    mean_square,
    neuron,
    stack_objectives,
    stacked_terms,
)
from jaxdream.objectives.grammar import _LOOK_ALIKES as _LOOK_ALIKES
from jaxdream.objectives.grammar import MAX_OBJECTIVE_CHARS, parse_objective

__all__ = [
    "MAX_OBJECTIVE_CHARS",
    "MAX_OBJECTIVE_WEIGHT",
    "MAX_TERMS",
    "MIN_LARGEST_WEIGHT",
    "Activations",
    "Array",
    "Channel",
    "Layer",
    "Logit",
    "MeanSquare",
    "Neuron",
    "Objective",
    "Shapes",
    "Sum",
    "broadcast_objective",
    "channel",
    "layer",
    "logit",
    "mean_square",
    "neuron",
    "parse_objective",
    "stack_objectives",
    "stacked_terms",
]
