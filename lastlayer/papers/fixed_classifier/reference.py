"""The paper's published numbers (Shalev, Shalev and Keshet, arXiv 2011.08704), as quoted in its text.

The tables themselves (1-9) were lost with the PDF; only the numbers the text repeats are known.
"""

DATASETS = ["STL-10", "CIFAR-10", "CIFAR-100", "Tiny ImageNet"]
NUM_CLASSES = {"STL-10": 10, "CIFAR-10": 10, "CIFAR-100": 100, "Tiny ImageNet": 200}

# Spearman correlation of class-vector cosine with the number of confusions, over all class pairs
SPEARMAN_LEARNED_DOT = dict(zip(DATASETS, [0.82, 0.77, 0.61, 0.79]))      # Section 2 (Figure 2, right)
SPEARMAN_LEARNED_COSINE_S1 = dict(zip(DATASETS, [0.85, 0.87, 0.81, 0.83]))  # Section 3 (Figure 4, right)

# Accuracy gain of fixed over learned class vectors, in percentage points ("up to")
MAX_GAIN_DOT = 4.0          # Introduction and Table 1
MAX_GAIN_COSINE_S1 = 53.0   # Section 3 and Table 2

# Average cosine between image embeddings and their predicted class vector, fixed cosine models with S = 1
IMAGE_CLASS_COSINE_FIXED_S1 = 0.95  # "roughly 0.95 in all experiments" (Section 3)

# The S values of Table 4 (image-to-class cosine of learned cosine models) and of Figure 4 (S = 1 vs 20)
TABLE4_SCALES = [1.0, 20.0, 40.0]
FIGURE4_SCALES = [1.0, 20.0]

# Hoffer et al. (2018), quoted in the introduction: fixed layers "on par or slightly drop (up to 0.5%)"
HOFFER_MAX_DROP = 0.5
