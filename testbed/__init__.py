"""The real system outside production, for the tests and the benchmarks alike.

Throwaway databases cloned from a migrated template (:mod:`testbed.databases`), the broker
names of a run (:mod:`testbed.broker`), the roles as child processes with HTTP over a socket
(:mod:`testbed.system`), several hosts on one machine with inboxes and networks of their
own (:mod:`testbed.hosts`), nginx in front of them (:mod:`testbed.nginx`), hostile clients
(:mod:`testbed.hostile`), and waits on conditions (:mod:`testbed.waits`).

Its own room because both ``tests/`` and ``bench/`` need it and neither should import the
other: it is not the product (the core ``videodrop`` and the roles never import it, which
``make lint`` checks, and it is not installed), and not ``deploy/`` (what an operator
needs). It imports the product and libraries, never pytest.
"""
