(ns jepsen.paxos.client
  "Talks to the paxos nodes over their HTTP API (SPEC: `POST /append`, `GET
  /list`, `GET /status`, `GET /health` on port 5000), and turns the
  list-append operations of the history format into those requests.

  Operations are Elle list-append transactions over the single list, key 0:

      append  invoke [[:append 0 5] [:r 0 nil]]   ok [[:append 0 5] [:r 0 [1 2 5]]]
      read    invoke [[:r 0 nil]]                 ok [[:r 0 [1 2 5]]]

  An append's read is the list right after that append, as the node returns
  it. Outcomes follow Jepsen's convention: `:fail` only when the operation
  definitely did not take effect (connection refused, connect timeout, 400,
  503, or an error body with `\"definite\": true`), `:info` when it may have
  (timeouts after the request was sent, 504, anything unexpected). Reads have
  no side effects, so a read that goes wrong is always a `:fail`."
  (:require [clojure.data.json :as json]
            [clojure.string :as str]
            [jepsen.client :as client]
            [org.httpkit.client :as http])
  (:import (java.net ConnectException
                     NoRouteToHostException
                     UnknownHostException)
           (org.httpkit.client TimeoutException)))

(def port
  "The HTTP port every node serves on (SPEC)."
  5000)

(def the-key
  "The single list's key in history operations. The system holds one list."
  0)

(defn node-address
  "The HOST:PORT a node is known by in the cluster's config file, and the value
  of its `--node` flag."
  [node]
  (str node ":" port))

(defn append-op
  "An invocation appending the unique integer v to the list."
  [v]
  {:f :txn, :value [[:append the-key v] [:r the-key nil]]})

(def read-op
  "An invocation reading the whole list."
  {:f :txn, :value [[:r the-key nil]]})

;; HTTP

(defn parse-json
  "Parses a JSON string into Clojure data with keyword keys. Returns nil when s
  is nil or not valid JSON (an error page from something that is not the node,
  say)."
  [s]
  (when (string? s)
    (try (json/read-str s :key-fn keyword)
         (catch Exception _ nil))))

(defn request!
  "Performs one HTTP request to node and waits for it. method is :get or
  :post, path is like \"/append\", body (may be nil) is sent as JSON.
  timeout-ms bounds connecting and every wait for data (http-kit's `:timeout`);
  the whole exchange is bounded by twice that. Connections are not kept alive,
  so each request opens its own, and a refused connection means this very
  request was never received.

  Never throws for network problems. Returns {:status s, :body parsed-json,
  :raw string}, or {:error throwable-or-keyword} when no response arrived."
  [node method path body timeout-ms]
  (let [timeout-ms (long timeout-ms)
        response   (http/request
                     {:url              (str "http://" node ":" port path)
                      :method           method
                      :headers          (cond-> {"Accept" "application/json"}
                                          body (assoc "Content-Type"
                                                      "application/json"))
                      :body             (some-> body json/write-str)
                      :timeout          timeout-ms
                      :keepalive        -1
                      :follow-redirects false
                      :as               :text})
        {:keys [status body error]} (deref response
                                           (* 2 timeout-ms)
                                           {:error :no-response-in-time})]
    (if error
      {:error error}
      {:status status, :body (parse-json body), :raw body})))

(defn never-sent?
  "Is this request error one that happened before the request could reach the
  node, so the node cannot have acted on it? True for a refused connection,
  no route, an unknown host, and http-kit's connect timeout (it names the phase
  in its message)."
  [error]
  (or (instance? ConnectException error)
      (instance? NoRouteToHostException error)
      (instance? UnknownHostException error)
      (and (instance? TimeoutException error)
           (str/starts-with? (str (.getMessage ^Exception error))
                             "connect timeout"))))

(defn error-description
  "A small EDN-friendly map describing what went wrong with a response (for the
  op's :error)."
  [{:keys [status body error raw]}]
  (cond (keyword? error)
        {:type error}

        error
        {:type    :exception
         :class   (.getName (class error))
         :message (.getMessage ^Throwable error)}

        :else
        (let [body (when (map? body) body)]
          {:type    :http
           :status  status
           :error   (:error body)
           :message (or (:message body)
                        (some-> raw (subs 0 (min 200 (count raw)))))})))

(defn outcome
  "Classifies a response from request! as :ok (HTTP 200), :fail (definitely
  not applied) or :info (maybe applied). An error body's `definite` flag is
  trusted when present; otherwise 4xx and 503 are definite and other statuses
  are not (SPEC: 503 definitely not applied, 504 unknown)."
  [{:keys [status body error]}]
  (cond error                       (if (never-sent? error) :fail :info)
        (= 200 status)              :ok
        (boolean? (:definite body)) (if (:definite body) :fail :info)
        (<= 400 status 499)         :fail
        (= 503 status)              :fail
        :else                       :info))

(defn status
  "The parsed JSON of node's `GET /status`, or nil if it does not answer 200
  within timeout-ms. Never throws."
  [node timeout-ms]
  (let [r (request! node :get "/status" nil timeout-ms)]
    (when (= 200 (:status r))
      (:body r))))

(defn health!
  "Returns true if node's `GET /health` answers 200 within timeout-ms;
  throws otherwise (for jepsen.util/await-fn)."
  [node timeout-ms]
  (let [r (request! node :get "/health" nil timeout-ms)]
    (when-not (= 200 (:status r))
      (throw (ex-info (str node " is not healthy yet")
                      {:type     ::unhealthy
                       :node     node
                       :response (error-description r)})))
    true))

;; Operations

(defn list-of
  "Checks that x, from a node's JSON response, is a list of integers and
  returns it as a vector. Throws otherwise: a malformed answer is a bug in the
  node, and Jepsen records the exception."
  [x response]
  (when-not (and (sequential? x) (every? integer? x))
    (throw (ex-info "node returned a malformed list"
                    {:type ::malformed-response, :response response})))
  (vec x))

(defn read!
  "Reads the list from the client's node with `GET /list`. Any failure is a
  :fail: a read changes nothing."
  [{:keys [node timeout-ms]} op]
  (let [r (request! node :get "/list" nil timeout-ms)]
    (if (= :ok (outcome r))
      (assoc op
             :type  :ok
             :value [[:r the-key (list-of (:list (:body r)) (:raw r))]])
      (assoc op :type :fail, :error (error-description r)))))

(def retry-pause-ms
  "Before each retry of an append, the client waits a random time in
  [min, max) milliseconds. Without it a retry after a reset connection (a
  killed node, say) follows at once and gets `connection refused` within
  milliseconds; the pause gives a restarted node or a new leader a moment,
  and the jitter keeps clients that failed together from retrying together."
  {:min 100, :max 500})

(defn retry-pause-draw
  "A random pause in milliseconds, in the range retry-pause-ms gives."
  []
  (let [{lo :min, hi :max} retry-pause-ms]
    (+ lo (rand-int (- hi lo)))))

(defn retry-pause!
  "Sleeps before a retry, for a random time from retry-pause-draw. Returns the
  milliseconds slept."
  []
  (let [ms (retry-pause-draw)]
    (Thread/sleep (long ms))
    ms))

(defn attempt-error
  "One entry of an append's :error: the attempt's number (from 1), the node it
  went to, and what went wrong (error-description)."
  [attempt node response]
  (merge {:attempt attempt, :node node} (error-description response)))

(defn append!
  "Appends v with `POST /append`, sending this client's id and a fresh
  sequence number so that the node applies it at most once. While the outcome
  is unknown (a timeout after sending, a 504), the same request, same id and
  sequence number, is retried up to :retries more times, each after a short
  random pause (retry-pause!); the node then answers a retry of an applied
  append with its first answer. Once any attempt was uncertain, a later
  definite error cannot show that an earlier attempt was not applied, so the
  op ends :ok or :info, never :fail. The :error of a :fail or :info op is a
  vector with one entry per attempt (attempt-error), in order."
  [{:keys [node timeout-ms retries client-id next-seq]} op v]
  (let [body {:value v, :client client-id, :seq (swap! next-seq inc)}]
    (loop [attempt    1
           errors     []
           uncertain? false]
      (let [r (request! node :post "/append" body timeout-ms)
            o (outcome r)]
        (if (= :ok o)
          (assoc op
                 :type  :ok
                 :value [[:append the-key v]
                         [:r the-key (list-of (:list (:body r)) (:raw r))]])
          (let [errors (conj errors (attempt-error attempt node r))]
            (cond (and (= :fail o) (not uncertain?))
                  (assoc op :type :fail, :error errors)

                  (<= attempt (long retries))
                  (do (retry-pause!)
                      (recur (inc attempt) errors true))

                  :else
                  (assoc op :type :info, :error errors))))))))

(defrecord Client [node timeout-ms retries client-id next-seq]
  client/Client
  (open! [this test node]
    (assoc this
           :node      node
           :client-id (str "jepsen-" (random-uuid))
           :next-seq  (atom 0)))

  (setup! [this test])

  (invoke! [this test op]
    (let [[[f k v] :as txn] (:value op)]
      (assert (= the-key k) (str "ops use the single key " the-key ": " txn))
      (case f
        :r      (read! this op)
        :append (append! this op v))))

  (teardown! [this test])

  (close! [this test]))

(defn client
  "A fresh Jepsen client. Options: :request-timeout (ms, per HTTP attempt) and
  :retries (extra attempts of an append whose outcome is unknown)."
  [opts]
  (map->Client {:timeout-ms (:request-timeout opts 10000)
                :retries    (:retries opts 2)}))
