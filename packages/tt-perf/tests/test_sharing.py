import numpy as np
import pytest
import tt_core
from tt_perf.pruning import prune
from tt_perf.sharing import assign, kmeans_codebook, share_weights


def test_assign_picks_the_nearest_centroid(rng):
    centroids = np.array([-1.0, 0.0, 0.5, 2.0], dtype=np.float32)
    values = rng.uniform(-3, 3, 1000).astype(np.float32)
    brute = np.abs(values[:, None] - centroids[None, :]).argmin(axis=1)
    np.testing.assert_array_equal(assign(values, centroids), brute)


def test_kmeans_finds_well_separated_clusters_and_lowers_the_error(rng):
    centres = np.array([-0.3, -0.05, 0.1, 0.4])
    values = (rng.choice(centres, 5000) + rng.normal(0, 0.01, 5000)).astype(np.float32)
    centroids, codes = kmeans_codebook(values, 4)
    np.testing.assert_allclose(centroids, centres, atol=2e-3)
    assert codes.dtype == np.uint8 and np.all(np.diff(centroids) > 0)
    one_pass, _ = kmeans_codebook(values, 4, iterations=0)  # the linear initialisation alone
    error = lambda c: np.mean((values - c[assign(values, c)]) ** 2)
    assert error(centroids) < error(one_pass)


def test_kmeans_centroids_are_the_means_of_their_clusters(rng):
    values = rng.standard_normal(2000).astype(np.float32)
    centroids, codes = kmeans_codebook(values, 8, iterations=50)
    means = np.array([values[codes == k].mean() for k in range(8)])
    np.testing.assert_allclose(centroids, means, atol=1e-5)


@pytest.mark.parametrize("clusters", [0, 257])
def test_kmeans_refuses_bad_cluster_counts(clusters):
    with pytest.raises(tt_core.ArgumentError, match="between 1 and 256"):
        kmeans_codebook(np.ones(4), clusters)


def test_kmeans_refuses_no_values():
    with pytest.raises(tt_core.ArgumentError, match="at least one value"):
        kmeans_codebook(np.zeros(0), 4)


def test_share_weights_keeps_zeros_and_uses_few_values(mlp):
    prune(mlp, 0.7)
    zeros = {name: layer.weight.data == 0 for name, layer in mlp.named_modules() if hasattr(layer, "weight")}
    books = share_weights(mlp, {"0": 4}, iterations=10)
    for name, layer in mlp.named_modules():
        if name in zeros:
            weight = layer.weight.data
            np.testing.assert_array_equal(weight == 0, zeros[name])
            assert set(np.unique(weight[weight != 0])) <= set(books[name])
    assert len(books["0"]) == 4 and len(books["2"]) == 16
