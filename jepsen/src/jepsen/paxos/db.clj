(ns jepsen.paxos.db
  "Installs, starts, kills, pauses and inspects the `paxos` binary on each
  node.

  The binary is the one built on the control node (`bun run build` makes
  `dist/paxos`); it is uploaded to every node, so workers need neither a git
  checkout nor a compiler. Everything a node uses lives under a directory
  named for the node, /opt/paxos/<node>/, with its own copy of the binary, its
  config, data, pidfile and log. Processes are found only through that
  pidfile, never by name: on a single machine whose hosts are network
  namespaces, every node shares one filesystem and one PID space, and a
  name-based kill would hit all of them."
  (:require [clojure.java.io :as io]
            [clojure.string :as str]
            [clojure.tools.logging :refer [info warn]]
            [jepsen [control :as c]
                    [db :as db]
                    [util :as util]]
            [jepsen.control.util :as cu]
            [jepsen.paxos [client :as pc]
                          [members :as members]]
            [clj-commons.slingshot :refer [try+ throw+]])
  (:import (java.nio.file Files)
           (java.nio.file.attribute FileAttribute PosixFilePermissions)
           (java.security SecureRandom)))

(def base-dir
  "Every node's directory lives under this one."
  "/opt/paxos")

(defn node-dir
  "The directory holding everything of one node. Node names are addresses
  (or host names); anything that could escape base-dir is refused, since this
  directory is removed with rm -rf."
  [node]
  (let [node (str node)]
    (when-not (and (re-matches #"[A-Za-z0-9._-]+" node)
                   (not (#{"." ".."} node)))
      (throw (IllegalArgumentException.
               (str "node name " (pr-str node)
                    " is not a plain host name or address"))))
    (str base-dir "/" node)))

(defn binary
  "This node's own copy of the paxos binary."
  [node]
  (str (node-dir node) "/bin/paxos"))

(defn data-dir
  "Where this node keeps its durable state."
  [node]
  (str (node-dir node) "/data"))

(defn config-file
  "This node's copy of the cluster config."
  [node]
  (str (node-dir node) "/paxos.conf"))

(defn secret-file
  "The node's copy of the cluster's shared secret for peer authentication (the
  server's --secret-file)."
  [node]
  (str (node-dir node) "/secret"))

(defn pidfile
  "The pidfile start-stop-daemon writes for this node's process."
  [node]
  (str (node-dir node) "/paxos.pid"))

(defn logfile
  "Where this node's stdout and stderr go."
  [node]
  (str (node-dir node) "/paxos.log"))

(defn random-secret
  "A fresh random shared secret for one test: 32 random bytes, as hex."
  []
  (let [bytes (byte-array 32)]
    (.nextBytes (SecureRandom.) bytes)
    (apply str (map #(format "%02x" %) bytes))))

;; The secret itself is never held in the test map, which Jepsen logs at the
;; start of a run and stores in test.jepsen, nor logged: the test map holds the
;; path of a file on the control node (:secret-file), and that file is what is
;; uploaded to each node.

(def secret-min-bytes
  "The fewest bytes (after trimming whitespace) a node accepts as its secret;
  it refuses to start with fewer."
  16)

(defn new-secret-file!
  "Writes a fresh random-secret to a new temporary file on the control node,
  readable and writable only by this user and deleted when the JVM exits.
  Returns the file's path."
  []
  (let [owner-only (PosixFilePermissions/asFileAttribute
                     (PosixFilePermissions/fromString "rw-------"))
        path       (Files/createTempFile "paxos-jepsen-secret-" ""
                                         (into-array FileAttribute [owner-only]))
        file       (.toFile path)]
    (.deleteOnExit file)
    (spit file (random-secret))
    (str path)))

(defn check-secret-file!
  "Checks that the control node's secret file at path can be read and holds a
  secret a node accepts (secret-min-bytes). Throws IllegalArgumentException
  naming the file and, at most, the secret's length, never its content.
  Returns the path."
  [path]
  (let [file  (io/file (str path))
        bytes (try (-> (slurp file) str/trim (.getBytes "UTF-8") alength)
                   (catch java.io.IOException e
                     (throw (IllegalArgumentException.
                              (str "cannot read the secret file " path ": "
                                   (.getMessage e))))))]
    (when (< bytes secret-min-bytes)
      (throw (IllegalArgumentException.
               (str "the secret file " path " holds " bytes " bytes; a node"
                    " needs at least " secret-min-bytes))))
    path))

(defn config-text
  "The cluster config file (SPEC format: one `host:port` a line) for the
  test's nodes."
  [test]
  (str "# Written by the Jepsen test: the nodes of this run.\n"
       (str/join "\n" (map pc/node-address (:nodes test)))
       "\n"))

(defn install!
  "Uploads the locally built binary (the test's :binary) and the cluster
  secret (the file at the test's :secret-file) to this node, and writes its
  config."
  [test node]
  (let [local  (io/file (:binary test))
        secret (check-secret-file! (:secret-file test))]
    (when-not (.isFile local)
      (throw (IllegalArgumentException.
               (str "No paxos binary at " (.getCanonicalPath local)
                    "; build it with `bun run build` in the repository root,"
                    " or pass --binary PATH"))))
    (c/su
      (c/exec :mkdir :-p (str (node-dir node) "/bin") (data-dir node))
      (c/upload local (binary node))
      (c/exec :chmod "0755" (binary node))
      (cu/write-file! (config-text test) (config-file node))
      ; Uploaded as a file, not written from a string: a failed write would
      ; put its input, the secret, in the exception Jepsen logs.
      (c/upload secret (secret-file node))
      (c/exec :chmod "0600" (secret-file node)))))

;; Membership. The test map holds two atoms (membership-state), kept by the
;; member nemesis (jepsen.paxos.nemesis) and read whenever a node is started:
;;
;;   :members  the nodes that are members of the cluster, as far as we know
;;   :joined   the nodes whose data dir was wiped, when they were removed or
;;             added back: from then on they only ever start with --join (a
;;             wiped node started without it would be refused, or worse, boot
;;             from the config as an initial member with no memory of its
;;             votes)
;;
;; Every node of the test starts as a member that has not joined.

(defn membership-state
  "The membership atoms for a test of these nodes, to merge into the test
  map."
  [nodes]
  {:members (atom (into (sorted-set) nodes))
   :joined  (atom (sorted-set))})

(defn member?
  "Is node a member of the cluster, as far as the test knows? Every node is,
  in a test map without membership-state."
  [test node]
  (if-let [known (:members test)]
    (contains? @known node)
    true))

(defn joined?
  "Must node be started with --join?"
  [test node]
  (boolean (some-> (:joined test) deref (contains? node))))

(defn server-args
  "The arguments of `paxos` that run this node's server, with --join for a node
  that joined the cluster (joined?). A node that already joined just restarts
  with --join."
  [test node]
  (cond-> [:server
           :--config      (config-file node)
           :--node        (pc/node-address node)
           :--data-dir    (data-dir node)
           :--secret-file (secret-file node)]
    (joined? test node) (conj :--join)))

(defn start-node!
  "Starts this node's process with start-stop-daemon, unless its pidfile names
  a live process running this node's binary. Returns :started or
  :already-running."
  [test node]
  (c/su
    (apply cu/start-daemon!
           {:logfile (logfile node)
            :pidfile (pidfile node)
            :chdir   (node-dir node)}
           (binary node)
           (server-args test node))))

(defn start-member!
  "Starts this node if it is a member (member?), as start-node!; returns
  :not-a-member otherwise. A removed node stays down until it is added back,
  whatever restarts the kill nemesis asks for."
  [test node]
  (if (member? test node)
    (start-node! test node)
    :not-a-member))

(defn pid
  "The process id in this node's pidfile, as a string, or nil when there is no
  pidfile."
  [node]
  (c/su
    (try+
      (let [p (str/trim (c/exec :cat (pidfile node)))]
        (when (re-matches #"\d+" p) p))
      (catch [:type :jepsen.control/nonzero-exit] _
        nil))))

(defn await-exit!
  "Waits until process pid is gone from the process table. A killed process
  stays a zombie until its parent reaps it, about a second on the one-box
  hosts; if it is still there after about 10 seconds we log and go on (a
  zombie holds no port or file)."
  [node pid]
  (loop [tries 100]
    (let [stat (try+ (str/trim (c/exec :ps :-o "stat=" :-p pid))
                     (catch [:type :jepsen.control/nonzero-exit] _
                       nil))]
      (cond (str/blank? stat) :exited

            (zero? tries)
            (do (warn node "process" pid "still in the process table, state"
                      stat)
                :still-present)

            :else
            (do (Thread/sleep 100)
                (recur (dec tries)))))))

(defn kill-node!
  "Kills this node's process with SIGKILL, by its pidfile, removes the
  pidfile, and waits for the process to be gone. Returns :killed, or
  :not-running when there was no pidfile."
  [node]
  (if-let [p (pid node)]
    (do (c/su (cu/stop-daemon! (pidfile node)))
        (c/su (await-exit! node p))
        :killed)
    :not-running))

(defn signal-node!
  "Sends signal (e.g. :STOP, :CONT) to the process in this node's pidfile.
  Returns :signaled, or :not-running when there is no pidfile or no such
  process."
  [node signal]
  (if-let [p (pid node)]
    (c/su
      (try+
        (c/exec :kill (str "-" (name signal)) p)
        :signaled
        (catch [:type :jepsen.control/nonzero-exit] e
          (warn node "could not send" signal "to" p ":" (:err e))
          :not-running)))
    :not-running))

(defn await-healthy!
  "Blocks until node answers `GET /health` with 200. If it does not within a
  minute, throws :jepsen.db/setup-failed so jepsen.db/cycle! tears the cluster
  down and tries again."
  [node]
  (try+
    (util/await-fn (fn check-health [] (pc/health! node 2000))
                   {:retry-interval 500
                    :log-interval   5000
                    :log-message    (str "Waiting for " node
                                         " to answer /health")
                    :timeout        60000})
    (catch [:type :timeout] _
      (throw+ {:type :jepsen.db/setup-failed
               :node node
               :why  "no 200 from /health within 60 s"}))))

(defn leaders
  "The nodes whose `GET /status` says they are the leader right now. Several
  can claim it during a change of leadership; all of them are returned.
  Unreachable nodes are left out."
  [test]
  (->> (:nodes test)
       (util/real-pmap (fn leader? [node]
                         (when (= "leader" (:role (pc/status node 1000)))
                           node)))
       (remove nil?)
       vec))

;; Membership changes, made by the member nemesis (jepsen.paxos.nemesis).
;; Each `paxos member` command runs on one node through its SSH session, with
;; that node's own binary and config; the config lists every test node, and
;; the command goes through whichever member answers.

(def member-timeout-seconds
  "How long a `paxos member` command may run before coreutils' timeout stops
  it (TERM, then KILL 5 s later): a change (add, remove), whose outcome is
  then unknown, and a list. Nemesis ops run one at a time, so a slow one
  delays the next fault and the next heal."
  {:change 30
   :list   10})

(defn member-command!
  "Runs `paxos member ARGS... --config F` on node, with node's own binary and
  config, as root, under coreutils' timeout (member-timeout-seconds of kind,
  :change or :list). node's SSH session must be bound (c/with-node). Returns
  {:exit n, :out stdout, :err stderr}; never throws for a non-zero exit."
  [node kind & args]
  (try+
    {:exit 0
     :out  (c/su (apply c/exec :timeout :-k 5 (member-timeout-seconds kind)
                        (binary node) :member
                        (concat args [:--config (config-file node)])))
     :err  ""}
    (catch [:type :jepsen.control/nonzero-exit] e
      {:exit (some-> (:exit e) long)
       :out  (str (:out e))
       :err  (str/trim (str (:err e)))})))

(defn member-error
  "The :error of a membership op whose command failed: its exit code and why,
  from its stderr (which names the reason of a refusal)."
  [{:keys [exit err]}]
  {:exit    exit
   :message (cond (not (str/blank? err)) (subs err 0 (min 500 (count err)))
                  (= 124 exit)           "timed out"
                  (= 137 exit)           "killed after timing out"
                  :else                  "no message")})

(defn address->node
  "A map of each test node's cluster address (HOST:PORT) to the node."
  [test]
  (into {} (map (juxt pc/node-address identity)) (:nodes test)))

(defn node-view
  "The membership as `paxos member list -o json` run on node reports it (a
  jepsen.paxos.members/view), or nil when the command fails or prints
  something else."
  [test node]
  (try
    (let [{:keys [exit out err]} (member-command! node :list :list :-o :json)]
      (if (= 0 exit)
        (or (members/view (address->node test) (pc/parse-json out))
            (do (warn node "member list printed no membership:" out)
                nil))
        (do (info node "member list failed, exit" exit ":" err)
            nil)))
    (catch Exception e
      (warn e node "could not run member list")
      nil)))

(defn membership-view
  "The newest membership (highest epoch) that `paxos member list` reports,
  run on every test node at once, or nil when none answers."
  [test]
  (->> (c/on-nodes test node-view)
       vals
       members/newest))

(defn refresh-members!
  "Asks the cluster for its membership (membership-view) and records its
  member nodes in the test's :members. Returns the view, or nil, changing
  nothing, when no node answered."
  [test]
  (when-let [view (membership-view test)]
    (when (seq (:others view))
      (warn "Members that are no test node:" (pr-str (:others view))))
    (info "Membership at epoch" (:epoch view) "is" (pr-str (:members view))
          "with voters" (pr-str (:voters view)))
    (reset! (:members test) (:members view))
    view))

(defn addable-nodes
  "The test's nodes that could be added to the cluster as the test last knew
  its membership."
  [test]
  (let [current @(:members test)]
    (members/addable (:nodes test) current (count current))))

(defn wipe!
  "Empties this node's data directory."
  [node]
  (c/su
    (c/exec :rm :-rf (data-dir node))
    (c/exec :mkdir :-p (data-dir node))))

(defn contact-for
  "A member of view to run a membership command on, other than node if there
  is another."
  [view node]
  (let [others (vec (disj (:members view) node))]
    (if (seq others)
      (rand-nth others)
      node)))

(defn change-member!
  "Runs `paxos member VERB ADDR` for node's address on the member via. When it
  is done (exit 0) calls (done!), which returns a map merged into the op's
  value. Returns {:value {:node node, :via via, :result ..}} and, when the
  change was refused (exit 1) or its outcome is unknown (3, a timeout, ...),
  the :error saying why. A usage error (exit 2) is a bug of this test and
  throws."
  [test verb node via done!]
  (info "Membership:" (name verb) node "via" via)
  (let [value {:node node, :via via}
        r     (c/with-node test via
                (member-command! via :change verb (pc/node-address node)))]
    (case (members/outcome (:exit r))
      :done    {:value (merge value (done!))}
      :refused {:value (assoc value :result :refused), :error (member-error r)}
      :unknown {:value (assoc value :result :unknown), :error (member-error r)}
      :usage   (throw+ {:type    ::member-usage-error
                        :command verb
                        :node    via
                        :exit    (:exit r)
                        :err     (:err r)}))))

(defn change-random-member!
  "Asks the cluster for its membership (refresh-members!), picks a random node
  of (candidates view) and a member to go through (contact-for), and returns
  (change! node via). When there is no candidate, returns {:value (none
  view)}; when no node answers, {:value {:result :membership-unknown}}."
  [test candidates none change!]
  (if-let [view (refresh-members! test)]
    (if-let [nodes (seq (candidates view))]
      (let [node (rand-nth (vec nodes))]
        (change! node (contact-for view node)))
      {:value (none view)})
    {:value {:result :membership-unknown}}))

(defn grow!
  "Adds a random test node that is no member to the cluster, as etcd's
  Jepsen test does: first kills any process the node still runs (one whose
  removal we could not confirm), then `paxos member add` through another
  member; once that is done, records the node as a member that joined, wipes
  its data dir and starts it with --join. A refused change, or one whose
  outcome is unknown, changes nothing else: the node stays down until a later
  grow, or until the membership shows it a member and it is started (with
  --join if its data dir was wiped). Returns {:value .., :error ..} for the
  op."
  [test]
  (change-random-member!
    test
    (fn addable [view]
      (members/addable (:nodes test) (:members view) (:size view)))
    (fn none [view]
      {:result :no-node-to-add, :members (vec (:members view))})
    (fn add! [node via]
      (c/with-node test node (kill-node! node))
      (change-member! test :add node via
                      (fn added! []
                        (swap! (:joined test) conj node)
                        (swap! (:members test) conj node)
                        (c/with-node test node
                          (wipe! node)
                          {:result :added
                           :start  (start-node! test node)}))))))

(defn shrink!
  "Removes a random member from the cluster, as etcd's Jepsen test does,
  keeping at least members/min-members members and voters: `paxos member
  remove` through another member; once that is done, records that the node
  is no member and must join to come back, kills its process and wipes its
  data dir. A refused change, or one whose outcome is unknown, changes
  nothing else. Returns {:value .., :error ..} for the op."
  [test]
  (change-random-member!
    test
    members/removable
    (fn none [view]
      {:result  :too-few-members-to-shrink
       :members (vec (:members view))
       :voters  (vec (:voters view))})
    (fn remove! [node via]
      (change-member! test :remove node via
                      (fn removed! []
                        (swap! (:members test) disj node)
                        (swap! (:joined test) conj node)
                        (c/with-node test node
                          (kill-node! node)
                          (wipe! node))
                        {:result :removed})))))

(defn start-members!
  "Starts every member that is not running (start-member!), after asking the
  cluster for its membership (refresh-members!; when no node answers, as the
  test last knew it). Returns {:value {node start-result}} for the op."
  [test]
  (refresh-members! test)
  {:value (c/on-nodes test (vec @(:members test)) start-member!)})

(defn node-log-files
  "The files to bring back from this node into store/: its log, its config,
  and a tarball of its data directory (the durable Paxos state, for
  post-mortems)."
  [node]
  (let [tarball (str (node-dir node) "/data.tar.gz")
        tarred? (try (c/su (cu/tarball! (data-dir node) tarball))
                     true
                     (catch Exception e
                       (warn e node "could not tar up" (data-dir node))
                       false))]
    (cond-> {(logfile node)     "paxos.log"
             (config-file node) "paxos.conf"}
      tarred? (assoc tarball "data.tar.gz"))))

(defrecord DB []
  db/DB
  (setup! [this test node]
    (info node "installing paxos from" (:binary test))
    (install! test node)
    (start-node! test node)
    (await-healthy! node))

  (teardown! [this test node]
    (info node "tearing down paxos")
    (kill-node! node)
    (c/su (c/exec :rm :-rf (node-dir node))))

  db/Kill
  (start! [this test node]
    (start-member! test node))

  (kill! [this test node]
    (kill-node! node))

  db/Pause
  (pause! [this test node]
    (signal-node! node :STOP))

  (resume! [this test node]
    (signal-node! node :CONT))

  db/Primary
  (setup-primary! [this test node])

  (primaries [this test]
    (leaders test))

  db/LogFiles
  (log-files [this test node]
    (node-log-files node)))

(defn db
  "The paxos DB. Reads from the test map :nodes, :binary (path of the binary
  on the control node) and :secret-file (path of the file on the control node
  holding the cluster's shared secret)."
  []
  (DB.))
