import sys

from jaxdream.runtime import configure_cpu_devices

configure_cpu_devices()  # the same CPU set-up as the CLI; XLA_FLAGS, when set, wins

from benchmarks.suite import main  # noqa: E402

sys.exit(main())
