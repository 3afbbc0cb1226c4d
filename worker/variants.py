"""The chapter's five network variants: one builder per architecture, one optimizer per variant.

Every hidden layer's activation output is named ``hidden{i}`` (1-based), whatever the variant,
so that the activation probe and the tests find the hidden layers without knowing the variant.
"""

from __future__ import annotations

from typing import Any

import keras

from backend.contract import DROPOUT_VARIANTS, VARIANT_NAMES

IMAGE_SHAPE = (32, 32, 3)
NUM_CLASSES = 10

# The SELU family needs standardized inputs to self-normalize; the ELU nets are fed [0, 1] pixels.
STANDARDIZED_VARIANTS: frozenset[str] = frozenset({"selu", "alpha_dropout", "onecycle"})

# The 1cycle momentum range: high while the learning rate is low, low while it peaks.
ONE_CYCLE_MOMENTUM_HIGH = 0.95
ONE_CYCLE_MOMENTUM_LOW = 0.85


def uses_standardized_inputs(variant: str) -> bool:
    """Whether the variant is fed per-feature standardized images rather than [0, 1] pixels."""
    _check_variant(variant)
    return variant in STANDARDIZED_VARIANTS


def hidden_layer_name(index: int) -> str:
    """The name of the layer whose output is hidden layer ``index``'s activation (1-based)."""
    return f"hidden{index}"


def build_network(
    variant: str, depth: int, width: int, dropout_rate: float = 0.1
) -> keras.Sequential:
    """Builds the uncompiled network of a variant: Flatten, ``depth`` hidden layers, softmax."""
    _check_variant(variant)
    if depth < 1 or width < 1:
        raise ValueError(f"Depth and width must be at least 1; got depth {depth}, width {width}.")
    layers: list[keras.layers.Layer] = [
        keras.Input(shape=IMAGE_SHAPE, name="image"),
        keras.layers.Flatten(name="flatten"),
    ]
    if variant == "batchnorm":
        # A BatchNormalization layer first standardizes the pixels, as the chapter's BN model
        # does; without it, the all-positive pixels make the first layer learn slowly (measured
        # on real CIFAR-10: 2-epoch val accuracy 35.2% without it, 39.4% with it).
        layers.append(keras.layers.BatchNormalization(name="input_batchnorm"))
    for index in range(1, depth + 1):
        layers.extend(_hidden_block(variant, index, width))
    # Dropout sits after the last hidden layer, right before the output, as in the chapter.
    if variant in DROPOUT_VARIANTS:
        layers.append(keras.layers.AlphaDropout(dropout_rate, name="alpha_dropout"))
    # The output layer comes once, after the hidden loop (the seed code added it inside the loop).
    layers.append(keras.layers.Dense(NUM_CLASSES, activation="softmax", name="output"))
    return keras.Sequential(layers, name=variant)


def _hidden_block(variant: str, index: int, width: int) -> list[keras.layers.Layer]:
    name = hidden_layer_name(index)
    if variant == "baseline":
        return [
            keras.layers.Dense(width, activation="elu", kernel_initializer="he_normal", name=name)
        ]
    if variant == "batchnorm":
        # Dense -> BatchNormalization -> ELU: normalize the pre-activations, as the chapter does.
        # The Dense layer has no bias: BatchNormalization's offset takes its place.
        return [
            keras.layers.Dense(
                width, kernel_initializer="he_normal", use_bias=False, name=f"{name}_dense"
            ),
            keras.layers.BatchNormalization(name=f"{name}_batchnorm"),
            keras.layers.Activation("elu", name=name),
        ]
    # SELU self-normalizes only with LeCun-normal weights and nothing but Dense layers.
    return [
        keras.layers.Dense(width, activation="selu", kernel_initializer="lecun_normal", name=name)
    ]


class CycledMomentumSGD(keras.optimizers.SGD):
    """SGD with momentum held in a variable, so that the 1cycle schedule can change it per batch.

    Keras' SGD reads ``momentum`` as a Python number, which a compiled train step freezes at
    its first value; a variable is read afresh at every step, with or without XLA.
    """

    def __init__(self, learning_rate: float, momentum: float, **kwargs: Any) -> None:
        if not 0 < momentum < 1:
            raise ValueError(f"The momentum must lie between 0 and 1; got {momentum}.")
        super().__init__(learning_rate=learning_rate, momentum=momentum, **kwargs)
        self.momentum_variable: keras.Variable | None = None

    def build(self, variables: list[keras.Variable]) -> None:
        if self.built:
            return
        super().build(variables)
        self.momentum_variable = self.add_variable(
            shape=(),
            initializer=keras.initializers.Constant(self.momentum),
            name="cycled_momentum",
        )

    def update_step(self, gradient: Any, variable: keras.Variable, learning_rate: Any) -> None:
        assert self.momentum_variable is not None, "build() creates the momentum variable"
        learning_rate = keras.ops.cast(learning_rate, variable.dtype)
        gradient = keras.ops.cast(gradient, variable.dtype)
        momentum = keras.ops.cast(self.momentum_variable, variable.dtype)
        velocity = self.momentums[self._get_variable_index(variable)]
        self.assign(velocity, velocity * momentum - gradient * learning_rate)
        self.assign_add(variable, velocity)


def make_optimizer(variant: str, learning_rate: float) -> keras.optimizers.Optimizer:
    """Nadam for the early-stopped variants; SGD with cycled momentum for 1cycle.

    For 1cycle, ``learning_rate`` and the momentum are only starting values: a callback sets
    both every batch.
    """
    _check_variant(variant)
    if learning_rate <= 0:
        raise ValueError(f"The learning rate must be positive; got {learning_rate}.")
    if variant == "onecycle":
        return CycledMomentumSGD(learning_rate=learning_rate, momentum=ONE_CYCLE_MOMENTUM_HIGH)
    return keras.optimizers.Nadam(learning_rate=learning_rate)


def compile_network(
    network: keras.Model, optimizer: keras.optimizers.Optimizer, jit_compile: bool | str = "auto"
) -> keras.Model:
    """Compiles with the loss and metric every variant shares."""
    network.compile(
        optimizer=optimizer,
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return network


def hidden_activation_outputs(network: keras.Model) -> list[keras.KerasTensor]:
    """The symbolic outputs of the hidden layers, input side first."""
    outputs = []
    index = 1
    while True:
        try:
            layer = network.get_layer(hidden_layer_name(index))
        except ValueError:
            break
        outputs.append(layer.output)
        index += 1
    return outputs


def _check_variant(variant: str) -> None:
    if variant not in VARIANT_NAMES:
        raise ValueError(
            f"Unknown variant {variant!r}; choose one of {', '.join(VARIANT_NAMES)}."
        )
