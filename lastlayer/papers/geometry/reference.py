"""The numbers de la Calle et al. publish (Section 3.1, the abstract, and the extended version), as fractions.

The paper gives no table: these are the figures quoted in its text. Its comparisons rest on three
repetitions per initialisation, so a range below is the range (max - min) of three runs.
"""

RUNS = 3                            # repetitions behind every range and mean the paper quotes

# random initialisation, long-tailed MNIST, three runs (Section 3.1)
RANDOM_TRAIN_ACC = (0.64, 0.95)     # lowest and highest final train accuracy
RANDOM_TEST_ACC = (0.33, 0.50)      # lowest and highest final test accuracy
RANDOM_TRAIN_RANGE = RANDOM_TRAIN_ACC[1] - RANDOM_TRAIN_ACC[0]   # 31 points
RANDOM_TEST_RANGE = RANDOM_TEST_ACC[1] - RANDOM_TEST_ACC[0]      # 17 points

# guided initialisation (Section 3.1, the conclusions and the abstract)
GUIDED_TEST_RANGE = 0.04            # "variability among trainings has been reduced to 4%"
GUIDED_TEST_GAIN = 0.18             # "final test accuracies are 18% higher in average" (points of accuracy)

# the norm constraint (extended version, IbPRIA 2019)
NORM_CONVERGENCE_CUT = 0.40         # "40% less time to converge" than without the constraint
