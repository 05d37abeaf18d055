(ns jepsen.paxos.nemesis
  "The faults: network partitions, process crashes and process pauses, built
  from jepsen.nemesis.combined, and membership changes (our own package, in
  the style of jepsen-io/etcd's member nemesis).

  Of jepsen.nemesis.combined only `partition-package` and `db-package` are
  used, composed with the member package by `compose-packages`.
  `nemesis-package` would also set up the clock nemesis (which compiles C
  with gcc and runs ntpdate against a public server) and file corruption
  (which downloads a tool), whatever faults were asked for; neither works on
  hosts without internet, and a clock fault on one-box hosts would change the
  whole machine's clock."
  (:require [clojure.string :as str]
            [jepsen [generator :as gen]
                    [nemesis :as n]]
            [jepsen.nemesis.combined :as nc]
            [jepsen.paxos.db :as db]))

(def fault-names
  "The faults --nemesis can name."
  #{:partition :kill :pause :member})

(def special-faults
  "Names --nemesis accepts that stand for several faults (or none)."
  {:none []
   :all  [:partition :kill :pause :member]})

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

;; Membership changes

(defn member-nemesis
  "A nemesis that removes members from the cluster and adds test nodes back
  (jepsen.paxos.db/shrink! and grow!), keeping the membership the test knows
  in the test's :members and :joined atoms. Its ops:

    {:type :info, :f :grow}            add a test node that is no member
    {:type :info, :f :shrink}          remove a member
    {:type :info, :f :start-members}   start every member that is down

  Each completes as :info. Its :value names the node and what happened, e.g.
  {:node \"10.0.0.4\", :via \"10.0.0.1\", :result :added, :start :started}
  (:result :added, :removed, :refused or :unknown), or says why nothing was
  tried ({:result :no-node-to-add}, :too-few-members-to-shrink,
  :membership-unknown). A refused change, or one whose outcome is unknown,
  carries the command's exit code and message in :error."
  []
  (reify
    n/Reflection
    (fs [this] #{:grow :shrink :start-members})

    n/Nemesis
    (setup! [this test] this)

    (invoke! [this test op]
      (merge op (case (:f op)
                  :grow          (db/grow! test)
                  :shrink        (db/shrink! test)
                  :start-members (db/start-members! test))))

    (teardown! [this test])))

(defn member-generator
  "Grows and shrinks at random, one op every interval seconds on average.
  While every node is a member, a grow finds no node to add."
  [opts]
  (->> (gen/mix [(gen/repeat {:type :info, :f :grow})
                 (gen/repeat {:type :info, :f :shrink})])
       (gen/stagger (:interval opts nc/default-interval))))

(defn grow-while-addable
  "A generator function: a grow while some test node is no member, as the test
  last knew the membership (each grow asks the cluster first)."
  [test ctx]
  (when (seq (db/addable-nodes test))
    {:type :info, :f :grow}))

(def member-final-generator
  "After the faults: start every member that is down, then add back, one a
  second and for at most a minute, every test node that is no member (as
  etcd's test does), so that the final reads find every node serving."
  [{:type :info, :f :start-members}
   (->> grow-while-addable
        (gen/delay 1)
        (gen/time-limit 60))])

(defn member-package
  "The membership package: the member nemesis, its generator, final generator
  and perf entries. Its fs have no :start or :stop, which checker/perf would
  otherwise assume (and take from the kill nemesis's :start)."
  [opts]
  {:nemesis         (member-nemesis)
   :generator       (member-generator opts)
   :final-generator member-final-generator
   :perf            #{{:name  "grow"
                       :start #{}
                       :stop  #{}
                       :fs    #{:grow}
                       :color "#E9A0E6"}
                      {:name  "shrink"
                       :start #{}
                       :stop  #{}
                       :fs    #{:shrink}
                       :color "#ACA0E9"}
                      {:name  "start members"
                       :start #{}
                       :stop  #{}
                       :fs    #{:start-members}
                       :color "#A0E9B4"}}})

(defn package
  "A nemesis package (a map of :nemesis, :generator, :final-generator and
  :perf) for the given options:

    :db        the DB (jepsen.paxos.db), which can kill, pause, and name
               primaries
    :faults    a collection of fault keywords from fault-names
    :interval  seconds between fault operations of each kind

  Packages for faults that were not asked for are left out, so no fault is
  even set up unless it is wanted; with no faults this is a no-op package.
  compose-packages runs the final generators one after the other, in this
  order: partitions healed, processes resumed and restarted, then members."
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
        (conj (nc/db-package opts))

        (faults :member)
        (conj (member-package opts))))))
