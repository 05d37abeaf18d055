#!/usr/bin/env bash
# Reads every form of every .clj file under jepsen/ (project.clj included) with the plain Clojure
# reader, without evaluating anything, and checks that each namespace under jepsen/src/ (and
# jepsen/test/) is named for its path. Needs only a JDK and Debian's `clojure` package
# (`apt-get install clojure`); Jepsen and its libraries are not needed and never loaded.
#
# Prints one line per file, then `N passed, N failed`; exits 1 if any file failed (or none was
# found), 2 if it could not run at all (then the last line is `0 passed, 1 failed`).
#
#   scripts/check-clojure.sh            # checks ./jepsen of this repository
#   scripts/check-clojure.sh DIR        # checks DIR instead
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/jepsen}"

if ! command -v clojure >/dev/null 2>&1; then
  echo "check-clojure: the clojure command is missing (apt-get install clojure)" >&2
  echo "0 passed, 1 failed"
  exit 2
fi
if [ ! -d "$dir" ]; then
  echo "check-clojure: no directory $dir" >&2
  echo "0 passed, 1 failed"
  exit 2
fi

program="$(mktemp "${TMPDIR:-/tmp}/check-clojure.XXXXXX.clj")"
trap 'rm -f "$program"' EXIT

cat >"$program" <<'CLOJURE'
(ns check-clojure
  "Reads .clj files form by form with *read-eval* off, and checks ns names
  against paths."
  (:require [clojure.java.io :as io]
            [clojure.string :as str])
  (:import (clojure.lang LineNumberingPushbackReader LispReader$Resolver)
           (java.io File)))

(def source-roots
  "Directories under the checked dir whose files must declare the ns their
  path names."
  ["src" "test"])

(defn relative-path
  "Path of file relative to dir, with / separators."
  [^File dir ^File file]
  (str/replace (str (.relativize (.toPath (.getCanonicalFile dir))
                                 (.toPath (.getCanonicalFile file))))
               File/separator "/"))

(defn expected-ns
  "The ns name a file at relative path rel must have (src/a/b_c.clj ->
  a.b-c), or nil when the file is not under a source root."
  [rel]
  (some (fn [root]
          (when (str/starts-with? rel (str root "/"))
            (-> rel
                (subs (inc (count root)))
                (str/replace #"\.clj$" "")
                (str/replace "/" ".")
                (str/replace "_" "-")
                symbol)))
        source-roots))

(defn libspec-aliases
  "Alias symbol -> namespace symbol for one argument of (:require ...),
  handling prefix lists like [jepsen [control :as c]]."
  [prefix spec]
  (cond
    (symbol? spec)
    {}

    (and (sequential? spec) (symbol? (first spec)))
    (let [[head & more] spec
          lib (if prefix (symbol (str prefix "." head)) head)]
      (if (or (empty? more) (keyword? (first more)))
        (let [opts (into {} (map vec (partition 2 more)))]
          (cond-> {}
            (symbol? (:as opts))       (assoc (:as opts) lib)
            (symbol? (:as-alias opts)) (assoc (:as-alias opts) lib)))
        (apply merge {} (map #(libspec-aliases lib %) more))))

    :else
    {}))

(defn declared-aliases
  "Alias symbol -> namespace symbol declared by the :require clauses of an
  (ns ...) form."
  [ns-form]
  (->> (drop 2 ns-form)
       (filter #(and (sequential? %) (= :require (first %))))
       (mapcat rest)
       (map #(libspec-aliases nil %))
       (apply merge {})))

(defn resolver
  "A reader resolver for ::kw and ::alias/kw (and syntax-quote) that uses the
  file's own ns name and aliases, so nothing has to be loaded."
  [ns-sym aliases]
  (reify LispReader$Resolver
    (currentNS [_] ns-sym)
    (resolveClass [_ sym] nil)
    (resolveAlias [_ sym] (get aliases sym))
    (resolveVar [_ sym] nil)))

(defn ns-form?
  "Is form an (ns name ...) form?"
  [form]
  (and (seq? form) (= 'ns (first form)) (symbol? (second form))))

(defn read-all
  "Reads every form of file. Returns {:forms n, :ns-form first-ns-form-or-nil}
  or throws the reader's exception. The first form is read with the ns the
  path implies; later forms with the ns and aliases of the ns form, if any."
  [^File file default-ns]
  (with-open [rdr (LineNumberingPushbackReader. (io/reader file))]
    (loop [n       0
           ns-form nil
           res     (resolver default-ns {})]
      (let [form (binding [*read-eval*       false
                           *reader-resolver* res]
                   (read {:eof ::eof} rdr))]
        (if (= ::eof form)
          {:forms n, :ns-form ns-form}
          (if (and (nil? ns-form) (ns-form? form))
            (recur (inc n) form (resolver (second form) (declared-aliases form)))
            (recur (inc n) ns-form res)))))))

(defn check-file
  "Checks one file; returns nil when it is fine, or a string saying why not."
  [dir file]
  (let [rel      (relative-path dir file)
        expected (expected-ns rel)]
    (try
      (let [{:keys [forms ns-form]} (read-all file (or expected 'user))
            declared (second ns-form)]
        (cond
          (and expected (nil? ns-form))
          (str "no (ns ...) form; expected (ns " expected " ...)")

          (and expected (not= expected declared))
          (str "declares ns " declared " but its path says " expected)

          (and (= rel "project.clj")
               (not= 1 forms))
          (str "project.clj should hold exactly one form, found " forms)

          :else nil))
      (catch Throwable t
        (let [data (ex-data t)
              line (or (:clojure.error/line data) (:line data))
              col  (or (:clojure.error/column data) (:column data))]
          (str "reader error"
               (when line (str " at line " line (when col (str ", column " col))))
               ": " (or (ex-message (or (ex-cause t) t)) (str t))))))))

(defn clj-files
  "Every .clj file under dir, sorted, skipping Leiningen's target/ and the
  store/ of test runs."
  [^File dir]
  (->> (file-seq dir)
       (filter #(and (.isFile ^File %) (str/ends-with? (.getName ^File %) ".clj")))
       (remove #(re-find #"^(target|store)/" (relative-path dir %)))
       (sort-by #(relative-path dir %))))

(defn -main
  "Checks every .clj file under the directory given as the first argument."
  [dir-path]
  (let [dir    (io/file dir-path)
        files  (clj-files dir)
        fails  (reduce (fn [fails file]
                         (let [rel (relative-path dir file)]
                           (if-let [why (check-file dir file)]
                             (do (println "FAIL" rel "-" why)
                                 (inc fails))
                             (do (println "ok  " rel)
                                 fails))))
                       0
                       files)
        passes (- (count files) fails)]
    (when (empty? files)
      (println "no .clj files under" dir-path))
    (println (str passes " passed, " fails " failed"))
    (flush)
    (System/exit (if (or (pos? fails) (empty? files)) 1 0))))

(apply -main *command-line-args*)
CLOJURE

set +e
clojure "$program" "$dir"
status=$?
set -e
# Exit 1 on failed files; anything else non-zero means the checker itself broke.
if [ "$status" -ne 0 ] && [ "$status" -ne 1 ]; then
  echo "check-clojure: the checker itself failed (exit $status)" >&2
  echo "0 passed, 1 failed"
  exit 2
fi
exit "$status"
