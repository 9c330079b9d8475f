import Foundation

/// A model repository in TF Serving's layout: `ROOT/<model>/<version>/model.minnow`, where a
/// version is a directory named by a non-negative integer. Scanning only reads directory entries
/// and file metadata; loading is the manager's job.
public struct ModelRepository: Sendable {
    public static let modelFileName = "model.minnow"
    public let root: String

    public init(root: String) { self.root = root }

    /// Identity of a file's current content as the file system reports it. A change in any part
    /// means "different bytes" (rewritten, replaced, still growing).
    public struct Fingerprint: Equatable, Hashable, Sendable {
        public let size: Int64
        public let modifiedNanoseconds: Int64
        public let inode: UInt64
    }

    public struct VersionFile: Sendable {
        public let version: Int
        public let path: String
        public let fingerprint: Fingerprint
    }

    /// Model names with their version files (sorted by version; nil for a model directory that
    /// cannot be listed now). Throws when the root itself cannot be listed: the caller then keeps
    /// serving what it has rather than unloading everything.
    public func scan() throws(ServeError) -> [String: [VersionFile]?] {
        let fm = FileManager.default
        let names: [String]
        do { names = try fm.contentsOfDirectory(atPath: root) } catch {
            throw ServeError(.unavailable, "model root \(root) cannot be listed: \(error.localizedDescription)")
        }
        var models: [String: [VersionFile]?] = [:]
        for name in names where !name.hasPrefix(".") && ModelRepository.isValidModelName(name) {
            let dir = root + "/" + name
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else { continue }
            // An unreadable model directory is skipped this round, not treated as empty.
            guard let entries = try? fm.contentsOfDirectory(atPath: dir) else {
                models[name] = .some(nil)
                continue
            }
            var versions: [VersionFile] = []
            for entry in entries {
                guard let v = ModelRepository.versionNumber(entry) else { continue }
                let path = dir + "/" + entry + "/" + ModelRepository.modelFileName
                guard let fp = ModelRepository.fingerprint(path) else { continue }
                versions.append(VersionFile(version: v, path: path, fingerprint: fp))
            }
            models[name] = versions.sorted { $0.version < $1.version }
        }
        return models
    }

    /// Version directories are plain decimal numbers ("3", "0012"), as TF Serving reads them.
    static func versionNumber(_ entry: String) -> Int? {
        guard !entry.isEmpty, entry.count <= 18, entry.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(entry)
    }

    /// Names that are safe in URLs, metric labels and logs.
    static func isValidModelName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 128
            && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0)) }
    }

    /// Size, modification time and inode of a regular file; nil when it is missing or not a file.
    static func fingerprint(_ path: String) -> Fingerprint? {
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        let ns = Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec)
        return Fingerprint(size: Int64(st.st_size), modifiedNanoseconds: ns, inode: UInt64(st.st_ino))
    }
}
