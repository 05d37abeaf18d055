(ns jepsen.paxos.members
  "The pure part of the membership nemesis: what `paxos member list -o json`
  says, which nodes may be added or removed, and what the exit code of a
  `paxos member` command means. Nothing here talks to a node, so it loads
  with plain Clojure (no Jepsen) and its tests run anywhere.

  The `paxos member` commands (SPEC):

      paxos member add ADDR --config F       ADDR joins as a non-voting learner
      paxos member remove ADDR --config F    removes a voter or a learner
      paxos member list --config F -o json   {\"epoch\":N, \"leader\":ADDR|null,
                                              \"members\":[{\"id\":0,
                                              \"address\":ADDR, \"voter\":true,
                                              \"leader\":false}, ...]}

  add and remove exit 0 when done, 1 when definitely not done (refused: a
  change already in flight, an address already a member, ...), 2 on a usage
  error, 3 when the outcome is unknown.")

(def max-members
  "The most members a cluster may have (SPEC)."
  9)

(def min-members
  "The nemesis never shrinks the cluster below this many members, nor below
  this many voters."
  3)

(defn view
  "Turns the parsed JSON of `paxos member list -o json` (keyword keys) into a
  view of the membership, given a map of member addresses (HOST:PORT) to test
  nodes:

    :epoch        the configuration's epoch
    :leader       the leader's node, or nil (none, or not a test node)
    :members      sorted set of the member nodes, voters and learners
    :voters       sorted set of the voting member nodes
    :size         how many members there are, test nodes or not
    :voter-count  how many of them vote
    :others       addresses of members that are no test node (never expected)

  Returns nil when the JSON is not of that shape."
  [address->node parsed]
  (let [{:keys [epoch leader members]} (when (map? parsed) parsed)]
    (when (and (integer? epoch)
               (sequential? members)
               (every? (fn well-formed? [m]
                         (and (map? m)
                              (string? (:address m))
                              (boolean? (:voter m))))
                       members))
      {:epoch       epoch
       :leader      (when (string? leader) (address->node leader))
       :members     (into (sorted-set) (keep (comp address->node :address))
                          members)
       :voters      (into (sorted-set) (keep (fn [m]
                                               (when (:voter m)
                                                 (address->node (:address m)))))
                          members)
       :size        (count members)
       :voter-count (count (filter :voter members))
       :others      (vec (remove address->node (map :address members)))})))

(defn newest
  "Of several views (nils ignored), the one with the highest epoch, or nil
  when there is none. Nodes that lag behind report older configurations."
  [views]
  (when-let [views (seq (remove nil? views))]
    (apply max-key :epoch views)))

(defn addable
  "The nodes, of the test's nodes, that may be added to a cluster whose member
  nodes are the set members and which has size members in all: those that are
  not members, while the cluster is below max-members."
  [nodes members size]
  (if (< size max-members)
    (vec (remove (set members) nodes))
    []))

(defn removable
  "The member nodes of view that may be removed: removing any of them leaves
  at least min-members members and at least min-members voters."
  [{:keys [members voters size voter-count]}]
  (if (<= size min-members)
    []
    (vec (filter (fn keeps-enough-voters? [node]
                   (or (not (contains? voters node))
                       (< min-members voter-count)))
                 members))))

(defn outcome
  "What the exit code of `paxos member add` or `remove` means: :done (0),
  :refused (1, definitely not done), :usage (2, a bug in how we called it),
  or :unknown (3, or anything else: killed by the timeout we run it under, the
  SSH session lost, ...)."
  [exit]
  (case (when (integer? exit) (long exit))
    0 :done
    1 :refused
    2 :usage
    :unknown))
