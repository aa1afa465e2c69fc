"""Real processes and networks for the tests and the benchmarks alike: the network-namespace testbed
(netns.py), an HTTP feed server with faults (feedserver.py) and a collector running in this process
(collector.py). The tests' fixtures over them stay in tests/.
"""
