(ns jepsen.paxos.append
  "The default workload: appends of unique integers to the single list, and
  reads of it, checked by Elle's list-append checker for strict
  serializability.

  The operations are SPEC's history format (see jepsen.paxos.client): an
  append is the transaction [[:append 0 v] [:r 0 nil]], whose read is filled
  in with the list right after the append, and a read is [[:r 0 nil]]. That
  is a list-append history over one key, which Elle checks as it is (and
  which `paxos check` also reads).

  The generator is our own rather than elle.list-append/gen: that one caps the
  writes per key at a Zipf-distributed draw below :max-writes-per-key (so even
  a huge cap often retires key 0 after a few hundred appends and moves on to
  key 1), and this system has exactly one list."
  (:require [jepsen.generator :as gen]
            [jepsen.paxos.client :as pc]
            [jepsen.tests.cycle.append :as cycle.append]))

(defn generator
  "Appends and reads, half and half. Appended values are 1, 2, 3, ... in the
  order the operations are generated, so every value is unique."
  []
  (gen/mix [(map pc/append-op (iterate inc 1))
            (repeat pc/read-op)]))

(defn final-generator
  "After the faults are healed: every client thread reads the list, once a
  second, until one of its reads succeeds. Gives Elle a read that follows
  every append in real time."
  []
  (gen/each-thread
    (gen/until-ok
      (gen/delay 1 (gen/repeat pc/read-op)))))

(defn checker
  "Elle's list-append checker (via jepsen.tests.cycle.append, which writes its
  output to the elle/ folder of the run), for strict serializability: on one
  key with single-op transactions that is linearizability of the list."
  []
  (cycle.append/checker {:consistency-models [:strict-serializable]}))

(defn workload
  "The list-append workload for the test options: client, generator, final
  generator and checker."
  [opts]
  {:client          (pc/client opts)
   :generator       (generator)
   :final-generator (final-generator)
   :checker         (checker)})
