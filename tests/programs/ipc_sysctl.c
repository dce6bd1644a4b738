/* The IPC namespace's tunables in /proc/sys/kernel and what they change:
 * msgmni and shmmni bound the number of queues and segments (ENOSPC),
 * shmmax a new segment's size (EINVAL), IPC_INFO reports them, and
 * msg_next_id / sem_next_id / shm_next_id give the next object its id (then
 * read -1 again; a taken index moves to the next free one).  Bad values are
 * EINVAL (next_id takes 0..INT_MAX); a user without CAP_SYS_ADMIN or
 * CAP_CHECKPOINT_RESTORE gets EACCES for next_id and for msgmni.  What LTP's msgget03/04/05 and
 * shmget02/03/05/06 check.  Run as root in a fresh IPC namespace.
 * "ipc_sysctl hugetlb" only tries a SHM_HUGETLB segment. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SHOW(what, expr) do { errno = 0; long r_ = (long)(expr); \
	printf("%-34s %ld %s\n", what, r_, r_ < 0 ? strerror(errno) : ""); } while (0)

static char path[256];

static const char *P(const char *name) {
	snprintf(path, sizeof path, "/proc/sys/kernel/%s", name);
	return path;
}

static void show_file(const char *name) {
	char buf[128] = "";
	int fd = open(P(name), O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (n > 0)
		buf[n] = 0;
	if (fd >= 0)
		close(fd);
	printf("%-34s %s", name, n > 0 ? buf : "(unreadable)\n");
}

/* 0, or -1 with errno from open or write. */
static int put(const char *name, const char *value) {
	int fd = open(P(name), O_WRONLY);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, value, strlen(value));
	int saved = errno;
	close(fd);
	errno = saved;
	return n < 0 ? -1 : 0;
}

int main(int argc, char **argv) {
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc > 1 && strcmp(argv[1], "hugetlb") == 0) {
		/* Depends on the kernel's huge pages: EINVAL without HUGETLBFS. */
		SHOW("shmget SHM_HUGETLB", shmget(IPC_PRIVATE, 4096, IPC_CREAT | SHM_HUGETLB));
		return 0;
	}
	const char *names[] = {"msgmni", "shmmni", "shmmax", "msg_next_id", "sem_next_id",
			       "shm_next_id"};
	for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
		struct stat st;
		show_file(names[i]);
		if (stat(P(names[i]), &st) == 0)
			printf("  mode %o\n", st.st_mode & 07777);
	}

	/* msgmni */
	SHOW("msgmni=3", put("msgmni", "3\n"));
	int q[4];
	for (int i = 0; i < 4; i++)
		SHOW("msgget private", (q[i] = msgget(IPC_PRIVATE, 0600)) < 0 ? -1 : 0);
	struct msginfo mi;
	SHOW("msgctl IPC_INFO", msgctl(0, IPC_INFO, (struct msqid_ds *)&mi) < 0 ? -1 : 0);
	printf("msginfo.msgmni %d\n", mi.msgmni);
	for (int i = 0; i < 3; i++)
		msgctl(q[i], IPC_RMID, NULL);
	SHOW("msgmni=32000", put("msgmni", "32000"));

	/* shmmni and shmmax */
	SHOW("shmmni=2", put("shmmni", "2"));
	int s[3];
	for (int i = 0; i < 3; i++)
		SHOW("shmget private", (s[i] = shmget(IPC_PRIVATE, 4096, 0600)) < 0 ? -1 : 0);
	struct shminfo si;
	SHOW("shmctl IPC_INFO", shmctl(0, IPC_INFO, (struct shmid_ds *)&si) < 0 ? -1 : 0);
	printf("shminfo.shmmni %lu\n", si.shmmni);
	for (int i = 0; i < 2; i++)
		shmctl(s[i], IPC_RMID, NULL);
	SHOW("shmmni=4096", put("shmmni", "4096"));
	SHOW("shmmax=8192", put("shmmax", "8192"));
	show_file("shmmax");
	SHOW("shmget 8193", shmget(IPC_PRIVATE, 8193, 0600) < 0 ? -1 : 0);
	int big = shmget(IPC_PRIVATE, 8192, 0600);
	SHOW("shmget 8192", big < 0 ? -1 : 0);
	shmctl(big, IPC_RMID, NULL);
	SHOW("shmctl IPC_INFO", shmctl(0, IPC_INFO, (struct shmid_ds *)&si) < 0 ? -1 : 0);
	printf("shminfo.shmmax %lu\n", si.shmmax);

	/* next_id */
	SHOW("msg_next_id=12345", put("msg_next_id", "12345"));
	int m1 = msgget(IPC_PRIVATE, 0600);
	printf("msgget id %d\n", m1);
	show_file("msg_next_id");
	SHOW("msg_next_id=12345 again", put("msg_next_id", "12345"));
	int m2 = msgget(IPC_PRIVATE, 0600);
	printf("msgget id %d\n", m2);
	msgctl(m1, IPC_RMID, NULL);
	msgctl(m2, IPC_RMID, NULL);
	SHOW("sem_next_id=98311", put("sem_next_id", "98311"));
	int sem = semget(IPC_PRIVATE, 1, 0600);
	printf("semget id %d\n", sem);
	semctl(sem, 0, IPC_RMID);
	SHOW("shm_next_id=100", put("shm_next_id", "100"));
	SHOW("shmget 8193 with next_id", shmget(IPC_PRIVATE, 8193, 0600) < 0 ? -1 : 0);
	show_file("shm_next_id");
	int shm = shmget(IPC_PRIVATE, 4096, 0600);
	printf("shmget id %d\n", shm);
	shmctl(shm, IPC_RMID, NULL);
	show_file("shm_next_id");

	/* bad values */
	SHOW("msg_next_id=-1", put("msg_next_id", "-1"));
	SHOW("msg_next_id=abc", put("msg_next_id", "abc"));
	SHOW("msg_next_id=2147483648", put("msg_next_id", "2147483648"));
	SHOW("msgmni=40000", put("msgmni", "40000"));
	SHOW("shmmni=-1", put("shmmni", "-1"));

	/* an unprivileged writer */
	pid_t pid = fork();
	if (pid == 0) {
		if (setuid(65534) != 0)
			_exit(1);
		SHOW("nobody msg_next_id=5", put("msg_next_id", "5"));
		SHOW("nobody msgmni=5", put("msgmni", "5"));
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("child %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	show_file("msg_next_id");
	show_file("msgmni");
	return 0;
}
