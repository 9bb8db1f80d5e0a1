"""The paper's published numbers (Anand, Bhupathiraju and Chandrala 2022), as printed; accuracies in %."""

# Figure 7: batch 4096, 60,000 MNIST training images, test accuracy per epoch, cache hits per epoch
FIG7_EPOCHS = 10
FIG7_BATCH = 4096
FIG7_IMAGES = 60000
FIG7_NORMAL = [11, 12.7, 18.6, 34.3, 67.1, 82.5, 85.2, 85.6, 91.2, 91.8]
FIG7_CACHING = [25.3, 62.1, 72.6, 85.9, 90, 91.6, 92.9, 93.7, 94.2, 94.2]
FIG7_HITS = [18133, 19376, 19675, 20413, 20711, 20851, 20947, 21197, 21247, 21181]
FIG7_HIT_SHARE = [h / FIG7_IMAGES for h in FIG7_HITS]

# Figure 8: final train and test accuracy per batch size, normal ("base model") and caching training
FIG8 = {
    "batch_size": [32, 64, 128, 256, 512, 1024, 2048, 4096],
    "normal train": [99.32, 98.20, 99.20, 98.44, 95.46, 97.41, 93.17, 91.24],
    "normal test": [98.52, 97.63, 98.07, 97.92, 94.85, 97.33, 93.10, 91.78],
    "caching train": [99.685, 94.71, 97.59, 96.01, 90.55, 94.57, 94.52, 94.17],
    "caching test": [98.77, 93.71, 96.49, 95.30, 90.42, 94.04, 94.58, 94.16],
}
# the largest deficit of caching against normal test accuracy in Figure 8 (batch 512): 4.43 points
FIG8_WORST_DEFICIT = max(n - c for n, c in zip(FIG8["normal test"], FIG8["caching test"]))

# Figure 9: base train, base test, feature-map model train, feature-map model test ('dataset:batch')
FIG9 = {"mnist:64": (98.98, 98.13, 94.24, 94.34), "mnist:256": (96.45, 96.34, 90.57, 90.75),
        "fashion_mnist:64": (72.89, 71.6, 72.18, 72.7)}

# Figure 10: MNIST, accuracy on FGSM images (made with the base model's gradients): base, feature-map model
FIG10 = {0.15: (28.09, 26.74), 0.25: (10.76, 23.82)}
FIG10_EPS = 0.25  # the epsilon the text names (section 6.2)
