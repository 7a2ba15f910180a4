"""MTnet-MVI: predicting future macrovascular invasion in hepatocellular carcinoma from CT.

Reference open pipeline after Fu S, Lai H, Li Q, et al. Multi-task deep learning network to
predict future macrovascular invasion in hepatocellular carcinoma. EClinicalMedicine
2021;42:101201. doi:10.1016/j.eclinm.2021.101201
"""

__version__ = "0.1.0"
