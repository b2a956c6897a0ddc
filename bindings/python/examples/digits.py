"""The data of the digits demos: scikit-learn's 8×8 digits (1797 images, 10 classes, bundled with
scikit-learn, so nothing is downloaded), split 80/20 with every class in both parts, standardised
with the training split's statistics only."""

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import nativesoftmax


def load(seed):
    """(x_train, x_test, y_train, y_test, classes): float32 features, int64 labels."""
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.2, random_state=seed, stratify=digits.target)
    scaler = StandardScaler().fit(x_train)  # statistics from the training split only
    x_train = scaler.transform(x_train).astype(np.float32)
    x_test = scaler.transform(x_test).astype(np.float32)
    classes = int(digits.target.max()) + 1
    print("nativesoftmax %s, ISA path: %s" % (nativesoftmax.__version__, nativesoftmax.isa()))
    print("digits: %d train / %d held-out images, %d features, %d classes"
          % (x_train.shape[0], len(y_test), x_train.shape[1], classes))
    return x_train, x_test, y_train.astype(np.int64), y_test.astype(np.int64), classes
