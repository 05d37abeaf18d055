(ns jepsen.paxos
  "Command line and test construction for the Jepsen test of the paxos
  replicated log. `lein run test ...` runs one test, `lein run analyze`
  re-checks a stored one, `lein run serve` browses store/."
  (:gen-class)
  (:require [clojure.string :as str]
            [jepsen [checker :as checker]
                    [cli :as cli]
                    [generator :as gen]
                    [os :as os]
                    [tests :as tests]]
            [jepsen.checker.timeline :as timeline]
            [jepsen.os.debian :as debian]
            [jepsen.paxos [append :as append]
                          [db :as db]
                          [linear :as linear]
                          [nemesis :as nemesis]]))

(def workloads
  "Workload names to functions of the test options that build a workload (a
  map of :client, :generator, :final-generator and :checker)."
  {:append append/workload
   :linear linear/workload})

(def oses
  "Values of --os. `debian` prepares Debian 13 workers (apt packages, as
  jepsen.os.debian does); `none` leaves the hosts alone, which the one-box
  network-namespace hosts need: they are the machine itself."
  {:debian debian/os
   :none   os/noop})

(def invariant-violation-pattern
  "What a node logs, then stops, when it detects a broken invariant."
  #"PAXOS-INVARIANT-VIOLATION")

(def final-read-seconds
  "How long, at most, the final reads (after healing) may take."
  60)

(defn test-name
  "A test name like \"paxos append partition,kill\", which also names its
  directory in store/."
  [opts]
  (str "paxos " (name (:workload opts)) " "
       (if (seq (:nemesis opts))
         (str/join "," (map name (:nemesis opts)))
         "no-faults")))

(defn paxos-test
  "Builds a Jepsen test map from the parsed command line options (:nodes,
  :ssh, :concurrency, :time-limit and our own options below)."
  [opts]
  (let [workload ((workloads (:workload opts)) opts)
        db       (db/db)
        nemesis  (nemesis/package {:db       db
                                   :nodes    (:nodes opts)
                                   :faults   (:nemesis opts)
                                   :interval (:nemesis-interval opts)})
        gen      (->> (:generator workload)
                      (gen/stagger (/ (:rate opts)))
                      (gen/nemesis (gen/phases (gen/sleep 5)
                                               (:generator nemesis)))
                      (gen/time-limit (:time-limit opts)))]
    (merge tests/noop-test
           opts
           ; :members and :joined, atoms the member nemesis keeps and the DB
           ; reads when it starts a node.
           (db/membership-state (:nodes opts))
           {:name            (test-name opts)
            :pure-generators true
            :os              (oses (:os opts))
            :db              db
            ; The path only: Jepsen logs and stores the test map.
            :secret-file     (or (:secret-file opts) (db/new-secret-file!))
            :client          (:client workload)
            :nemesis         (:nemesis nemesis)
            :checker         (checker/compose
                               {:perf       (checker/perf
                                              {:nemeses (:perf nemesis)})
                                :stats      (checker/stats)
                                :exceptions (checker/unhandled-exceptions)
                                :timeline   (timeline/html)
                                :invariants (checker/log-file-pattern
                                              invariant-violation-pattern
                                              "paxos.log")
                                :workload   (:checker workload)})
            :generator       (gen/phases
                               gen
                               (gen/log "Healing the cluster")
                               (gen/nemesis (:final-generator nemesis))
                               (gen/log "Waiting for recovery")
                               (gen/sleep (:recovery-time opts))
                               (gen/log "Final reads")
                               (gen/time-limit
                                 final-read-seconds
                                 (gen/clients
                                   (:final-generator workload))))})))

(def cli-opts
  "Command line options of `test`, beyond Jepsen's own (jepsen.cli/
  test-opt-spec: --nodes, --nodes-file, --username, --ssh-private-key,
  --concurrency, --time-limit, ...)."
  [[nil "--algorithm NAME"
    "Knossos search algorithm for the linear workload: competition, linear or wgl."
    :default  :competition
    :parse-fn keyword
    :validate [linear/algorithms (cli/one-of linear/algorithms)]]

   [nil "--binary PATH"
    "The paxos binary on this control node, uploaded to every node. Build it with `bun run build`."
    :default "../dist/paxos"]

   [nil "--nemesis FAULTS"
    "Comma-separated faults: partition, kill, pause, member; or all, or none."
    :default  []
    :parse-fn nemesis/parse-faults
    :validate [(partial every? nemesis/fault-names)
               (cli/one-of (concat nemesis/fault-names
                                   (keys nemesis/special-faults)))]]

   [nil "--nemesis-interval SECONDS"
    "Roughly how long between fault operations of each kind."
    :default  10
    :parse-fn parse-double
    :validate [#(and (number? %) (pos? %)) "Must be a positive number"]]

   [nil "--os NAME"
    "debian: install the packages the test needs on Debian workers. none: touch nothing (one-box network-namespace hosts)."
    :default  :debian
    :parse-fn keyword
    :validate [oses (cli/one-of oses)]]

   ["-r" "--rate HZ"
    "Approximate number of client operations per second, over all clients."
    :default  20
    :parse-fn parse-double
    :validate [#(and (number? %) (pos? %)) "Must be a positive number"]]

   [nil "--secret-file PATH"
    "File on this control node holding the cluster secret that authenticates the nodes to each other (at least 16 bytes), uploaded to every node. Default: a fresh random secret for each test, in a temporary file only you can read."]

   [nil "--recovery-time SECONDS"
    "How long to wait after healing every fault before the final reads."
    :default  10
    :parse-fn parse-long
    :validate [#(and (integer? %) (not (neg? %))) "Must be a non-negative integer"]]

   [nil "--request-timeout MS"
    "Timeout of one HTTP request, in milliseconds."
    :default  10000
    :parse-fn parse-long
    :validate [#(and (integer? %) (pos? %)) "Must be a positive integer"]]

   [nil "--retries N"
    "How many times an append whose outcome is unknown is retried (same client id and sequence number, so it is applied at most once)."
    :default  2
    :parse-fn parse-long
    :validate [#(and (integer? %) (not (neg? %))) "Must be a non-negative integer"]]

   ["-w" "--workload NAME"
    "append (Elle list-append, the default) or linear (Knossos; keep runs short)."
    :default  :append
    :parse-fn keyword
    :validate [workloads (cli/one-of workloads)]]])

(defn -main
  "Runs the command line: `test` runs one test (exit 0 valid, 1 invalid,
  2 unknown), `analyze` re-checks a stored test, `serve` serves store/ on
  http://localhost:8080."
  [& args]
  (cli/run! (merge (cli/single-test-cmd {:test-fn  paxos-test
                                         :opt-spec cli-opts})
                   (cli/serve-cmd))
            args))
