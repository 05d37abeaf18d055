(ns jepsen.paxos.nemesis
  "The faults: network partitions, process crashes and process pauses, built
  from jepsen.nemesis.combined.

  Only `partition-package` and `db-package` are used, composed with
  `compose-packages`. `nemesis-package` would also set up the clock nemesis
  (which compiles C with gcc and runs ntpdate against a public server) and
  file corruption (which downloads a tool), whatever faults were asked for;
  neither works on hosts without internet, and a clock fault on one-box hosts
  would change the whole machine's clock."
  (:require [clojure.string :as str]
            [jepsen.nemesis.combined :as nc]))

(def fault-names
  "The faults --nemesis can name."
  #{:partition :kill :pause})

(def special-faults
  "Names --nemesis accepts that stand for several faults (or none)."
  {:none []
   :all  [:partition :kill :pause]})

(defn parse-faults
  "Parses a comma-separated --nemesis value like \"partition,kill\" into a
  vector of fault keywords, expanding `none` and `all`."
  [spec]
  (->> (str/split spec #",")
       (map str/trim)
       (remove str/blank?)
       (map keyword)
       (mapcat (fn expand [f] (get special-faults f [f])))
       distinct
       vec))

(def partition-targets
  "Partition shapes: one node cut off, a clean majority/minority split,
  overlapping majorities in a ring, and the current leader(s) cut off each on
  its own."
  [:one :majority :majorities-ring :primaries])

(def kill-targets
  "Which nodes a kill hits: one, the leader(s), a majority, or all of them."
  [:one :primaries :majority :all])

(def pause-targets
  "Which nodes a pause (SIGSTOP) hits."
  [:one :primaries :majority :all])

(defn package
  "A nemesis package (a map of :nemesis, :generator, :final-generator and
  :perf) for the given options:

    :db        the DB (jepsen.paxos.db), which can kill, pause, and name
               primaries
    :faults    a collection of fault keywords from fault-names
    :interval  seconds between fault operations of each kind

  Packages for faults that were not asked for are left out, so no fault is
  even set up unless it is wanted; with no faults this is a no-op package."
  [opts]
  (let [faults (set (:faults opts))
        opts   (assoc opts
                      :faults    faults
                      :partition {:targets partition-targets}
                      :kill      {:targets kill-targets}
                      :pause     {:targets pause-targets})]
    (nc/compose-packages
      (cond-> []
        (faults :partition)
        (conj (nc/partition-package opts))

        (or (faults :kill) (faults :pause))
        (conj (nc/db-package opts))))))
