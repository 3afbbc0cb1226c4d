"""The five variants' architectures, optimizers and input scaling, as the chapter prescribes."""

from __future__ import annotations

import keras
import pytest

from worker.variants import (
    CycledMomentumSGD,
    build_network,
    hidden_activation_outputs,
    make_optimizer,
    uses_standardized_inputs,
)


def kinds(network: keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in network.layers]


def hidden_dense_layers(network: keras.Model) -> list[keras.layers.Dense]:
    return [layer for layer in network.layers if isinstance(layer, keras.layers.Dense)][:-1]


def initializer_name(layer: keras.layers.Dense) -> str:
    return type(layer.kernel_initializer).__name__


def test_baseline_is_twenty_he_normal_elu_dense_layers_then_softmax() -> None:
    network = build_network("baseline", depth=20, width=100)
    assert kinds(network) == ["Flatten"] + ["Dense"] * 21
    hidden = hidden_dense_layers(network)
    assert len(hidden) == 20
    for layer in hidden:
        assert layer.units == 100
        assert layer.activation is keras.activations.elu
        assert initializer_name(layer) == "HeNormal"
    output = network.layers[-1]
    assert output.units == 10 and output.activation is keras.activations.softmax


def test_batchnorm_normalizes_the_inputs_then_sits_between_dense_and_elu_in_every_layer() -> None:
    network = build_network("batchnorm", depth=20, width=100)
    expected = (
        ["Flatten", "BatchNormalization"]
        + ["Dense", "BatchNormalization", "Activation"] * 20
        + ["Dense"]
    )
    assert kinds(network) == expected
    for layer in hidden_dense_layers(network):
        assert initializer_name(layer) == "HeNormal"
        assert layer.activation is keras.activations.linear
        assert not layer.use_bias, "BatchNormalization's offset replaces the bias"
    activations = [layer for layer in network.layers if isinstance(layer, keras.layers.Activation)]
    assert all(layer.activation is keras.activations.elu for layer in activations)


def test_selu_is_dense_only_with_lecun_normal_and_selu() -> None:
    network = build_network("selu", depth=20, width=100)
    assert kinds(network) == ["Flatten"] + ["Dense"] * 21
    for layer in hidden_dense_layers(network):
        assert layer.activation is keras.activations.selu
        assert initializer_name(layer) == "LecunNormal"


@pytest.mark.parametrize("variant", ["alpha_dropout", "onecycle"])
def test_dropout_variants_are_the_selu_net_with_alpha_dropout_before_the_output(
    variant: str,
) -> None:
    network = build_network(variant, depth=20, width=100, dropout_rate=0.2)
    assert kinds(network) == ["Flatten"] + ["Dense"] * 20 + ["AlphaDropout", "Dense"]
    assert network.layers[-2].rate == pytest.approx(0.2)
    for layer in hidden_dense_layers(network):
        assert layer.activation is keras.activations.selu
        assert initializer_name(layer) == "LecunNormal"


@pytest.mark.parametrize("variant", ["baseline", "batchnorm", "selu", "alpha_dropout", "onecycle"])
@pytest.mark.parametrize("depth", [1, 3])
def test_depth_and_width_are_parameters_and_the_output_comes_once_after_the_loop(
    variant: str, depth: int
) -> None:
    network = build_network(variant, depth=depth, width=7)
    assert len(hidden_dense_layers(network)) == depth
    assert all(layer.units == 7 for layer in hidden_dense_layers(network))
    outputs = [layer for layer in network.layers if getattr(layer, "units", None) == 10]
    assert outputs == [network.layers[-1]]
    assert len(hidden_activation_outputs(network)) == depth
    assert network.output_shape == (None, 10)


@pytest.mark.parametrize(
    ("variant", "optimizer_class"),
    [
        ("baseline", keras.optimizers.Nadam),
        ("batchnorm", keras.optimizers.Nadam),
        ("selu", keras.optimizers.Nadam),
        ("alpha_dropout", keras.optimizers.Nadam),
        ("onecycle", CycledMomentumSGD),
    ],
)
def test_optimizer_kind_and_rate(variant: str, optimizer_class: type) -> None:
    optimizer = make_optimizer(variant, 3e-4)
    assert type(optimizer) is optimizer_class
    assert float(optimizer.learning_rate) == pytest.approx(3e-4)


def test_only_the_selu_family_is_standardized() -> None:
    assert not uses_standardized_inputs("baseline")
    assert not uses_standardized_inputs("batchnorm")
    assert uses_standardized_inputs("selu")
    assert uses_standardized_inputs("alpha_dropout")
    assert uses_standardized_inputs("onecycle")


def test_bad_variant_and_shapes_are_refused_with_a_sentence() -> None:
    with pytest.raises(ValueError, match="Unknown variant 'resnet'"):
        build_network("resnet", depth=2, width=4)
    with pytest.raises(ValueError, match="at least 1"):
        build_network("selu", depth=0, width=4)
    with pytest.raises(ValueError, match="must be positive"):
        make_optimizer("selu", 0.0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        CycledMomentumSGD(learning_rate=0.01, momentum=1.5)
