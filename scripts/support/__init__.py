"""What the benchmarks and the tests both need: free ports, a big log in one
statement, many signed-in users. The tests import it from here (tests.support
builds its servers on it); the benchmarks do not depend on the test package."""
