(ns jepsen.paxos-test
  "Unit tests of the pure parts of the Jepsen test: outcome classification,
  retries, fault parsing, the Knossos list model, the node layout, the
  membership atoms of the test map and the handling of the cluster secret.
  No nodes needed: `lein test`."
  (:require [clojure.string :as str]
            [clojure.test :refer [deftest is testing]]
            [jepsen.paxos :as paxos]
            [jepsen.paxos.client :as pc]
            [jepsen.paxos.db :as db]
            [jepsen.paxos.linear :as linear]
            [jepsen.paxos.nemesis :as nemesis]
            [knossos.model :as model])
  (:import (java.io File IOException)
           (java.nio.file Files LinkOption)
           (java.nio.file.attribute PosixFilePermissions)
           (java.net ConnectException)
           (org.httpkit.client TimeoutException)))

(deftest outcome-test
  (testing "definite failures"
    (is (= :fail (pc/outcome {:error (ConnectException. "Connection refused")})))
    (is (= :fail (pc/outcome {:error (TimeoutException. "connect timeout: 10ms")})))
    (is (= :fail (pc/outcome {:status 503, :body nil})))
    (is (= :fail (pc/outcome {:status 400, :body {:error "BadRequest"}})))
    (is (= :fail (pc/outcome {:status 504, :body {:definite true}}))))
  (testing "unknown outcomes"
    (is (= :info (pc/outcome {:error (TimeoutException. "idle timeout: 10ms")})))
    (is (= :info (pc/outcome {:error (IOException. "Connection reset by peer")})))
    (is (= :info (pc/outcome {:error :no-response-in-time})))
    (is (= :info (pc/outcome {:status 504, :body nil})))
    (is (= :info (pc/outcome {:status 500, :body nil})))
    (is (= :info (pc/outcome {:status 503, :body {:definite false}}))))
  (is (= :ok (pc/outcome {:status 200, :body {:list []}}))))

(deftest ops-test
  (is (= {:f :txn, :value [[:append 0 5] [:r 0 nil]]} (pc/append-op 5)))
  (is (= {:f :txn, :value [[:r 0 nil]]} pc/read-op)))

;; Appends with retries, over scripted responses instead of the network.

(defn scripted-append
  "Runs pc/append! of v for a client of node with the given retries, where
  each HTTP request gets the next of responses and retry pauses are only
  recorded. Returns {:op completed-op, :events [[:request body] [:pause] ...]}."
  [node retries responses v]
  (let [left   (atom responses)
        events (atom [])]
    (with-redefs [pc/request!     (fn [n method path body timeout-ms]
                                    (is (= [node :post "/append"] [n method path]))
                                    (swap! events conj [:request body])
                                    (let [r (first @left)]
                                      (swap! left rest)
                                      r))
                  pc/retry-pause! (fn []
                                    (swap! events conj [:pause])
                                    0)]
      (let [client {:node node, :timeout-ms 1000, :retries retries
                    :client-id "jepsen-test", :next-seq (atom 0)}
            op     (pc/append! client (pc/append-op v) v)]
        {:op op, :events @events}))))

(deftest append-retry-test
  (testing "a pause before each retry, none before the first attempt; every
           retry is the same request"
    (let [{:keys [op events]}
          (scripted-append "n1" 2
                           [{:error (IOException. "Connection reset by peer")}
                            {:error (ConnectException. "Connection refused")}
                            {:status 504
                             :body   {:error "OutcomeUnknown", :definite false}
                             :raw    "{}"}]
                           7)
          body {:value 7, :client "jepsen-test", :seq 1}]
      (is (= [[:request body] [:pause] [:request body] [:pause] [:request body]]
             events))
      (testing "and the :info op's :error names every attempt, in order"
        (is (= :info (:type op)))
        (is (= [[:append 0 7] [:r 0 nil]] (:value op)))
        (is (= [1 2 3] (mapv :attempt (:error op))))
        (is (= ["n1" "n1" "n1"] (mapv :node (:error op))))
        (is (= ["java.io.IOException" "java.net.ConnectException" nil]
               (mapv :class (:error op))))
        (is (= {:attempt 3, :node "n1", :type :http, :status 504
                :error "OutcomeUnknown", :message "{}"}
               (nth (:error op) 2))))))
  (testing "a definite failure of the first attempt: :fail, no retry"
    (let [{:keys [op events]}
          (scripted-append "n2" 2 [{:error (ConnectException. "Connection refused")}] 8)]
      (is (= :fail (:type op)))
      (is (= 1 (count events)))
      (is (= [{:attempt 1, :node "n2", :type :exception
               :class "java.net.ConnectException", :message "Connection refused"}]
             (:error op)))))
  (testing "success after a retry: :ok with the list, no :error"
    (let [{:keys [op events]}
          (scripted-append "n3" 2 [{:error (TimeoutException. "idle timeout: 1000ms")}
                                   {:status 200, :body {:list [3 9]}, :raw "{}"}]
                           9)]
      (is (= :ok (:type op)))
      (is (= [[:append 0 9] [:r 0 [3 9]]] (:value op)))
      (is (nil? (:error op)))
      (is (= [:request :pause :request] (mapv first events)))))
  (testing "with no retries, an unknown outcome ends :info after one attempt"
    (let [{:keys [op events]} (scripted-append "n1" 0 [{:status 504, :body nil}] 10)]
      (is (= :info (:type op)))
      (is (= 1 (count (:error op)) (count events))))))

(deftest retry-pause-test
  (let [{lo :min, hi :max} pc/retry-pause-ms
        draws (repeatedly 1000 pc/retry-pause-draw)]
    (is (< 0 lo hi))
    (is (every? #(<= lo % (dec hi)) draws))
    (is (< 1 (count (distinct draws))) "jittered, not one fixed pause")))

(deftest parse-faults-test
  (is (= [:partition :kill] (nemesis/parse-faults "partition,kill")))
  (is (= [:partition :kill :pause :member] (nemesis/parse-faults "all")))
  (is (= [:member :kill] (nemesis/parse-faults "member,kill")))
  (is (= [] (nemesis/parse-faults "none")))
  (is (= [:pause :kill] (nemesis/parse-faults "pause, kill,pause"))))

(defn run-model
  "Steps the model through ops; returns the final model or the first
  inconsistency."
  [m ops]
  (reduce (fn [m op]
            (let [m' (model/step m op)]
              (if (model/inconsistent? m') (reduced m') m')))
          m
          ops))

(deftest list-model-test
  (let [m (linear/list-model)]
    (testing "appends return the list right after them; reads see it"
      (is (= (linear/->ListModel [1 2])
             (run-model m [{:f :txn, :value [[:append 0 1] [:r 0 [1]]]}
                           {:f :txn, :value [[:r 0 [1]]]}
                           {:f :txn, :value [[:append 0 2] [:r 0 nil]]}
                           {:f :txn, :value [[:r 0 [1 2]]]}])))
      (is (= m (run-model m [{:f :txn, :value [[:r 0 []]]}]))))
    (testing "the initial state is [], not unknown"
      (is (model/inconsistent?
            (run-model m [{:f :txn, :value [[:r 0 [1]]]}]))))
    (testing "an append's list must end with it, after what came before"
      (is (model/inconsistent?
            (run-model m [{:f :txn, :value [[:append 0 1] [:r 0 [2 1]]]}]))))))

(deftest layout-test
  (is (= "/opt/paxos/10.77.0.11/bin/paxos" (db/binary "10.77.0.11")))
  (is (= "/opt/paxos/10.77.0.11/paxos.pid" (db/pidfile "10.77.0.11")))
  (is (thrown? IllegalArgumentException (db/node-dir "../etc")))
  (is (thrown? IllegalArgumentException (db/node-dir "")))
  (is (= "# Written by the Jepsen test: the nodes of this run.\n10.77.0.11:5000\n10.77.0.12:5000\n"
         (db/config-text {:nodes ["10.77.0.11" "10.77.0.12"]}))))

;; The cluster secret: only a file's path in the test map.

(defn permissions
  "A file's POSIX permissions, like \"rw-------\"."
  [path]
  (PosixFilePermissions/toString
    (Files/getPosixFilePermissions (.toPath (File. (str path)))
                                   (make-array LinkOption 0))))

(defn temp-file-with
  "A new temporary file holding s, deleted when the JVM exits."
  [s]
  (let [f (File/createTempFile "paxos-test-secret-" "")]
    (.deleteOnExit f)
    (spit f s)
    (str f)))

(def test-opts
  "Options as the command line would give them (no --secret-file)."
  {:nodes            ["10.77.0.11" "10.77.0.12" "10.77.0.13"]
   :workload         :append
   :nemesis          []
   :nemesis-interval 10
   :rate             20
   :time-limit       10
   :recovery-time    10
   :os               :none
   :binary           "../dist/paxos"
   :request-timeout  10000
   :retries          2
   :algorithm        :competition})

(deftest secret-file-test
  (testing "a fresh secret file is readable only by its owner and good enough
           for a node"
    (let [path (db/new-secret-file!)]
      (is (= "rw-------" (permissions path)))
      (is (re-matches #"[0-9a-f]{64}" (slurp path)))
      (is (= path (db/check-secret-file! path)))))
  (testing "a secret too short for a node is refused before it is uploaded,
           without showing it"
    (let [path (temp-file-with "xyzzy\n")
          e    (is (thrown? IllegalArgumentException
                            (db/check-secret-file! path)))]
      (is (str/includes? (ex-message e) "5 bytes"))
      (is (not (str/includes? (ex-message e) "xyzzy")))))
  (testing "a missing file is refused"
    (is (thrown? IllegalArgumentException
                 (db/check-secret-file! "/nonexistent/paxos-secret")))))

(deftest test-map-secret-test
  (testing "without --secret-file the test map holds a fresh file's path, never
           the secret"
    (let [t      (paxos/paxos-test test-opts)
          path   (:secret-file t)
          secret (str/trim (slurp path))]
      (is (not (contains? t :secret)))
      (is (= "rw-------" (permissions path)))
      (is (not-any? #(= secret %) (vals t)))
      ; The generator is infinite; everything else Jepsen prints.
      (is (not (str/includes? (pr-str (dissoc t :generator)) secret)))))
  (testing "each test gets its own secret"
    (is (not= (slurp (:secret-file (paxos/paxos-test test-opts)))
              (slurp (:secret-file (paxos/paxos-test test-opts))))))
  (testing "--secret-file is used as given"
    (let [path (temp-file-with "0123456789abcdef0123456789abcdef")]
      (is (= path (:secret-file (paxos/paxos-test
                                  (assoc test-opts :secret-file path))))))))

(deftest test-map-membership-test
  (testing "the test map holds the member nemesis's atoms: every node a member,
           none joined, fresh for each test"
    (let [t (paxos/paxos-test (assoc test-opts :nemesis [:member]))]
      (is (= (set (:nodes test-opts)) @(:members t)))
      (is (= #{} @(:joined t)))
      (is (not (identical? (:members t)
                           (:members (paxos/paxos-test test-opts))))))))
