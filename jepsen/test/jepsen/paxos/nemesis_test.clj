(ns jepsen.paxos.nemesis-test
  "Tests of how the member nemesis is put together and of how the DB starts a
  node that joined. No nodes needed: `lein test`."
  (:require [clojure.test :refer [deftest is testing]]
            [jepsen.nemesis :as n]
            [jepsen.paxos [db :as db]
                          [nemesis :as nemesis]]))

(def nodes ["10.0.0.1" "10.0.0.2" "10.0.0.3" "10.0.0.4" "10.0.0.5"])

(defn package
  "The nemesis package for these faults."
  [faults]
  (nemesis/package {:db       (db/db)
                    :nodes    nodes
                    :faults   faults
                    :interval 10}))

(deftest member-faults-test
  (is (= [:member] (nemesis/parse-faults "member")))
  (is (some #{:member} (nemesis/parse-faults "all"))))

(deftest package-test
  (testing "--nemesis member alone: the member nemesis's fs"
    (is (= #{:grow :shrink :start-members}
           (set (n/fs (:nemesis (package [:member])))))))
  (testing "--nemesis all: every package composes, no :f claimed twice"
    (let [pkg (package (nemesis/parse-faults "all"))]
      (is (= #{:start-partition :stop-partition
               :start :kill :pause :resume
               :grow :shrink :start-members}
             (set (n/fs (:nemesis pkg)))))
      (testing "checker/perf needs distinct names"
        (is (apply distinct? (map :name (:perf pkg)))))
      (testing "the member entries claim no :start or :stop, which perf would
               otherwise default to :start and :stop, the kill nemesis's"
        (doseq [p (:perf pkg)
                :when (some (set (:fs p)) [:grow :shrink :start-members])]
          (is (= #{} (:start p) (:stop p)) (:name p))))
      (testing "the members are healed last, after processes restart"
        (is (= nemesis/member-final-generator
               (last (:final-generator pkg))))))))

(deftest final-generator-test
  (let [test (merge {:nodes nodes} (db/membership-state nodes))]
    (testing "no grow while every node is a member"
      (is (nil? (nemesis/grow-while-addable test {}))))
    (testing "a grow while some node is no member"
      (swap! (:members test) disj "10.0.0.4")
      (is (= {:type :info, :f :grow}
             (nemesis/grow-while-addable test {}))))))

(deftest membership-state-test
  (let [test (merge {:nodes nodes} (db/membership-state nodes))]
    (testing "every node starts a member that has not joined"
      (is (every? #(db/member? test %) nodes))
      (is (not-any? #(db/joined? test %) nodes))
      (is (not-any? #{:--join} (db/server-args test "10.0.0.1"))))
    (testing "a node removed and wiped starts with --join from then on"
      (swap! (:members test) disj "10.0.0.1")
      (swap! (:joined test) conj "10.0.0.1")
      (is (not (db/member? test "10.0.0.1")))
      (is (= :not-a-member (db/start-member! test "10.0.0.1")))
      (is (= [:server
              :--config      "/opt/paxos/10.0.0.1/paxos.conf"
              :--node        "10.0.0.1:5000"
              :--data-dir    "/opt/paxos/10.0.0.1/data"
              :--secret-file "/opt/paxos/10.0.0.1/secret"
              :--join]
             (db/server-args test "10.0.0.1")))))
  (testing "a test map without membership-state: every node a member, none
           joined"
    (is (db/member? {} "10.0.0.1"))
    (is (not (db/joined? {} "10.0.0.1")))))
